import Foundation

/// Per-partition consumer lag, read from librdkafka's statistics JSON.
public struct PartitionLag: Sendable, Hashable {
    public let topicPartition: TopicPartition
    /// Messages between the consumer's position and the partition's high watermark
    /// (`consumer_lag`); nil while librdkafka does not know it yet.
    public let lag: Int64?
    /// Messages between the stored offset and the high watermark (`consumer_lag_stored`).
    public let storedLag: Int64?
    /// librdkafka's fetch state (`active`, `stopped`, `offset-query`, ...).
    public let fetchState: String
    public let highWatermark: Int64?
    public let committedOffset: Int64?
    public let storedOffset: Int64?
}

/// A parsed statistics snapshot: what postclassd needs of librdkafka's statistics callback.
public struct ConsumerStatistics: Sendable {
    public let partitions: [PartitionLag]

    /// Lag of the partitions that are fetching; others report stale numbers and are left out.
    public var fetchingPartitions: [PartitionLag] {
        partitions.filter { $0.fetchState == "active" }
    }

    /// Parses librdkafka's statistics JSON (see its STATISTICS.md). Returns nil if it is not JSON
    /// of the expected shape; unknown fields are ignored.
    public static func parse(_ json: UnsafeRawBufferPointer) -> ConsumerStatistics? {
        guard let data = try? JSONDecoder().decode(RawStatistics.self, from: Data(json)) else { return nil }
        var result: [PartitionLag] = []
        for (topic, stats) in data.topics ?? [:] {
            for (key, p) in stats.partitions ?? [:] {
                // Partition -1 is librdkafka's internal "unassigned" bucket.
                guard let partition = Int32(key), partition >= 0 else { continue }
                result.append(PartitionLag(
                    topicPartition: TopicPartition(topic: topic, partition: partition),
                    lag: p.consumer_lag.flatMap { $0 >= 0 ? $0 : nil },
                    storedLag: p.consumer_lag_stored.flatMap { $0 >= 0 ? $0 : nil },
                    fetchState: p.fetch_state ?? "unknown",
                    highWatermark: p.hi_offset.flatMap { $0 >= 0 ? $0 : nil },
                    committedOffset: p.committed_offset.flatMap { $0 >= 0 ? $0 : nil },
                    storedOffset: p.stored_offset.flatMap { $0 >= 0 ? $0 : nil }))
            }
        }
        return ConsumerStatistics(partitions: result.sorted { $0.topicPartition < $1.topicPartition })
    }

    private struct RawStatistics: Decodable {
        let topics: [String: RawTopic]?
    }

    private struct RawTopic: Decodable {
        let partitions: [String: RawPartition]?
    }

    // Field names are librdkafka's.
    private struct RawPartition: Decodable {
        let fetch_state: String?
        let consumer_lag: Int64?
        let consumer_lag_stored: Int64?
        let hi_offset: Int64?
        let committed_offset: Int64?
        let stored_offset: Int64?
    }
}
