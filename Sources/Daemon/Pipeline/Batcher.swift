import Kafka

/// Collects admitted records into micro-batches: a batch closes when it holds `size` records or
/// when its first record has waited `maxWait`, whichever comes first.
struct Batcher {
    let size: Int
    let maxWait: Duration
    private var current: [AdmittedRecord] = []
    private var openedAt: ContinuousClock.Instant?

    init(size: Int, maxWait: Duration) {
        self.size = size
        self.maxWait = maxWait
        current.reserveCapacity(size)
    }

    var isEmpty: Bool { current.isEmpty }

    /// Adds a record; returns a full batch when this record completed one.
    mutating func add(_ record: AdmittedRecord, now: ContinuousClock.Instant) -> [AdmittedRecord]? {
        if current.isEmpty { openedAt = now }
        current.append(record)
        return current.count >= size ? take() : nil
    }

    /// The open batch, if it has waited long enough.
    mutating func takeIfDue(now: ContinuousClock.Instant) -> [AdmittedRecord]? {
        guard let openedAt, !current.isEmpty, now - openedAt >= maxWait else { return nil }
        return take()
    }

    /// How long until the open batch is due (nil when there is none).
    func timeUntilDue(now: ContinuousClock.Instant) -> Duration? {
        guard let openedAt, !current.isEmpty else { return nil }
        return max(.zero, maxWait - (now - openedAt))
    }

    /// The open batch, whatever its size.
    mutating func take() -> [AdmittedRecord] {
        defer {
            current = []
            current.reserveCapacity(size)
            openedAt = nil
        }
        return current
    }

    /// Drops records of revoked partitions from the open batch and returns them.
    mutating func remove(partitions: Set<TopicPartition>) -> [AdmittedRecord] {
        let removed = current.filter { partitions.contains($0.message.topicPartition) }
        current.removeAll { partitions.contains($0.message.topicPartition) }
        if current.isEmpty { openedAt = nil }
        return removed
    }
}
