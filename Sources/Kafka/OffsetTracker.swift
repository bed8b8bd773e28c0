/// Tracks which consumed records are finished, per partition, and tells when the committable
/// offset (the contiguous low watermark) moves.
///
/// Records finish out of order (batches run in parallel, deliveries land on different output
/// partitions), but an offset may only be stored once every record before it is finished, or a
/// crash would skip the unfinished ones. `track` each record in consumption order, `finish` it
/// when its output is delivered, and store the offset `finish` returns.
///
/// A value type with no locking: the owner serialises access.
public struct OffsetTracker: Sendable {
    /// Offsets of one partition in consumption order, from `head` on, with their finished flags.
    private struct Partition: Sendable {
        var offsets: [Int64] = []
        var finished: [Bool] = []
        var head = 0
        /// The highest offset ever tracked here, to tell redeliveries and gaps.
        var lastTracked: Int64?

        var pending: Int { offsets.count - head }

        /// Returns nil for a redelivery (at or below the last tracked offset), else how many
        /// offsets were skipped since the last tracked one.
        mutating func track(_ offset: Int64) -> Int64? {
            var skipped: Int64 = 0
            if let last = lastTracked {
                guard offset > last else { return nil }
                skipped = offset - last - 1
            }
            lastTracked = offset
            offsets.append(offset)
            finished.append(false)
            return skipped
        }

        mutating func finish(_ offset: Int64) -> Int64? {
            // Binary search over the pending range: offsets are increasing.
            var low = head, high = offsets.count - 1
            var found = -1
            while low <= high {
                let mid = (low + high) / 2
                if offsets[mid] == offset { found = mid; break }
                if offsets[mid] < offset { low = mid + 1 } else { high = mid - 1 }
            }
            guard found >= 0, !finished[found] else { return nil }
            finished[found] = true
            var committable: Int64?
            while head < offsets.count && finished[head] {
                committable = offsets[head] + 1
                head += 1
            }
            compactIfNeeded()
            return committable
        }

        /// Drops the finished prefix once it is large, so memory follows what is pending.
        private mutating func compactIfNeeded() {
            guard head > 4096, head * 2 > offsets.count else { return }
            offsets.removeFirst(head)
            finished.removeFirst(head)
            head = 0
        }
    }

    private var partitions: [TopicPartition: Partition] = [:]

    /// Offsets never seen between two consecutive tracked records of a partition, over the
    /// tracker's life. Compacted topics and transaction markers leave such gaps legitimately; a
    /// client that skips records after pause and resume (librdkafka #4208, fixed in 2.1) leaves
    /// them too, so they are counted and reported rather than ignored.
    public private(set) var skippedOffsets: Int64 = 0

    public init() {}

    /// Records that `offset` was consumed and is now in flight. Offsets of a partition must be
    /// tracked in increasing order; an offset at or below the last tracked one is ignored (it is
    /// a redelivery of a record already in flight or finished) and false is returned.
    @discardableResult
    public mutating func track(_ partition: TopicPartition, offset: Int64) -> Bool {
        // Mutated in place through the subscript, so the arrays are never copied.
        guard let skipped = partitions[partition, default: Partition()].track(offset) else { return false }
        skippedOffsets += skipped
        return true
    }

    /// Marks a record finished. Returns the offset to store (the next record to read after the
    /// contiguous finished prefix) when that prefix grew, nil otherwise. Unknown partitions or
    /// offsets (revoked since) return nil.
    public mutating func finish(_ partition: TopicPartition, offset: Int64) -> Int64? {
        partitions[partition]?.finish(offset) ?? nil
    }

    /// Forgets partitions (revoked): their pending records will be read again by the next owner.
    public mutating func forget(_ revoked: some Sequence<TopicPartition>) {
        for partition in revoked { partitions[partition] = nil }
    }

    /// Records tracked but not yet finished, over all partitions.
    public var pendingCount: Int { partitions.values.reduce(0) { $0 + $1.pending } }

    /// Every partition with records pending: the first unfinished offset (where the next reader
    /// starts, as nothing past it is stored) and how many records are pending from there.
    public var unfinished: [(partition: TopicPartition, from: Int64, count: Int)] {
        partitions.compactMap { tp, p in p.pending > 0 ? (tp, p.offsets[p.head], p.pending) : nil }
            .sorted { $0.partition < $1.partition }
    }

    /// Records tracked but not yet finished in one partition.
    public func pendingCount(_ partition: TopicPartition) -> Int { partitions[partition]?.pending ?? 0 }
}
