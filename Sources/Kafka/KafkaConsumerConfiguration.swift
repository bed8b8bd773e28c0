/// Settings of a group consumer.
///
/// Offsets are stored only by the application (`enable.auto.offset.store=false`): librdkafka
/// auto-commits what was stored, so an offset is never committed before the application says its
/// record is done. That setting is forced; everything else can be overridden through
/// ``KafkaClientConfiguration/properties``.
public struct KafkaConsumerConfiguration: Sendable {
    public var client: KafkaClientConfiguration
    /// `group.id`.
    public var groupID: String
    /// `partition.assignment.strategy`; cooperative-sticky moves only the partitions that must move.
    public var assignmentStrategy: String = "cooperative-sticky"
    /// `auto.offset.reset`: where a partition with no committed offset (or an out-of-range one) starts.
    public var autoOffsetReset: String = "earliest"
    /// `enable.auto.commit`: commit stored offsets every ``autoCommitInterval``. Off when a
    /// transactional producer commits the offsets inside its transactions
    /// (``KafkaProducer/sendOffsets(_:group:timeout:)``).
    public var autoCommit = true
    /// `auto.commit.interval.ms`: how often stored offsets are committed.
    public var autoCommitInterval: Duration = .seconds(1)
    /// `session.timeout.ms`.
    public var sessionTimeout: Duration = .seconds(45)
    /// `max.poll.interval.ms`: the group evicts a member that does not poll for this long.
    public var maxPollInterval: Duration = .seconds(300)

    public init(client: KafkaClientConfiguration, groupID: String) {
        self.client = client
        self.groupID = groupID
    }

    func orderedProperties() -> [(String, String)] {
        var base = client.orderedProperties()
        let typed: [(String, String)] = [
            ("group.id", groupID),
            ("partition.assignment.strategy", assignmentStrategy),
            ("auto.offset.reset", autoOffsetReset),
            ("enable.auto.commit", autoCommit ? "true" : "false"),
            ("auto.commit.interval.ms", String(autoCommitInterval.milliseconds)),
            ("session.timeout.ms", String(sessionTimeout.milliseconds)),
            ("max.poll.interval.ms", String(maxPollInterval.milliseconds)),
        ]
        // Typed settings go before the pass-through properties so a property can override them,
        // except the offset-store rule, which at-least-once delivery depends on.
        base.insert(contentsOf: typed, at: 3)
        base.append(("enable.auto.offset.store", "false"))
        return base
    }
}
