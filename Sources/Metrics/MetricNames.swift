/// What happened to the consumer's partition assignment, for `postclassd_rebalances_total{kind}`.
public enum RebalanceKind: String, Sendable, CaseIterable {
    /// Partitions were assigned to this consumer.
    case assigned
    /// Partitions were revoked cooperatively (their results may still be stored before the hand-over).
    case revoked
    /// Partitions were lost (session timeout, fenced): their in-flight results must be dropped.
    case lost
}

/// A topic and partition, for the per-partition consumer lag gauge.
public struct TopicPartition: Hashable, Sendable, CustomStringConvertible {
    /// The topic name.
    public var topic: String
    /// The partition number within the topic.
    public var partition: Int32

    /// Creates a topic-partition pair.
    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    /// `topic[partition]`, as the dashboard's lag legend shows it.
    public var description: String { "\(topic)[\(partition)]" }
}

/// Histogram bucket layouts shared by the daemon's histograms and the dashboard's queries.
public enum MetricBuckets {
    /// Latency buckets in seconds, 1 ms to 30 s: covers a pass-through stage (sub-millisecond
    /// lands in the first bucket) up to an end-to-end latency under heavy backpressure.
    public static let latencySeconds: [Double] = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
    ]

    /// Batch size buckets, powers of two from 1 to 256 (the largest sensible `--batch-size`).
    public static let batchSize: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256]
}
