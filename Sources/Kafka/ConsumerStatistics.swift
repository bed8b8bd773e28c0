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
    /// The consumer group's state (`up` once a coordinator is known) and join state (`steady`
    /// once the member has its assignment); nil for producers.
    public let groupState: String?
    public let groupJoinState: String?
    /// Brokers of the cluster (not bootstrap or internal entries) and how many are connected.
    public let brokersKnown: Int
    public let brokersUp: Int

    /// True when the member is in its group with an assignment.
    public var hasJoinedGroup: Bool { groupState == "up" && groupJoinState == "steady" }

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
        let brokers = (data.brokers ?? [:]).values.filter { ($0.nodeid ?? -1) >= 0 }
        return ConsumerStatistics(partitions: result.sorted { $0.topicPartition < $1.topicPartition },
                                  groupState: data.cgrp?.state, groupJoinState: data.cgrp?.join_state,
                                  brokersKnown: brokers.count, brokersUp: brokers.filter { $0.state == "UP" }.count)
    }

    private struct RawStatistics: Decodable {
        let topics: [String: RawTopic]?
        let brokers: [String: RawBroker]?
        let cgrp: RawGroup?
    }

    private struct RawBroker: Decodable {
        let nodeid: Int?
        let state: String?
    }

    private struct RawGroup: Decodable {
        let state: String?
        let join_state: String?
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
