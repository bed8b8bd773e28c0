import CRdKafka

/// One Kafka record header. A header may have no value (Kafka's null), which differs from empty.
public struct KafkaHeader: Hashable, Sendable {
    public let key: String
    public let value: [UInt8]?

    public init(key: String, value: [UInt8]?) {
        self.key = key
        self.value = value
    }

    public init(key: String, string: String) {
        self.init(key: key, value: Array(string.utf8))
    }
}

/// A record read from Kafka, copied out of librdkafka so it owns its bytes (the librdkafka message
/// is freed as soon as it has been copied).
public struct ConsumedMessage: Sendable {
    public let topicPartition: TopicPartition
    public let offset: Int64
    public let key: [UInt8]?
    public let value: [UInt8]?
    public let headers: [KafkaHeader]
    /// The record's timestamp in milliseconds since the epoch, when the broker gave one.
    public let timestampMs: Int64?

    public var topic: String { topicPartition.topic }
    public var partition: Int32 { topicPartition.partition }
    /// Bytes the record holds in memory (key, value and headers), for in-flight accounting.
    public var byteCount: Int {
        (key?.count ?? 0) + (value?.count ?? 0) + headers.reduce(0) { $0 + $1.key.utf8.count + ($1.value?.count ?? 0) }
    }

    public init(topicPartition: TopicPartition, offset: Int64, key: [UInt8]?, value: [UInt8]?,
                headers: [KafkaHeader], timestampMs: Int64?) {
        self.topicPartition = topicPartition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
        self.timestampMs = timestampMs
    }

    /// Copies a librdkafka message; the caller still owns (and must destroy) `message`.
    init(copying message: UnsafePointer<rd_kafka_message_t>, topic: String) {
        let m = message.pointee
        topicPartition = TopicPartition(topic: topic, partition: m.partition)
        offset = m.offset
        key = m.key.map { Array(UnsafeRawBufferPointer(start: $0, count: m.key_len)) }
        value = m.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: m.len)) }
        var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let ts = rd_kafka_message_timestamp(message, &type)
        timestampMs = type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : ts
        headers = ConsumedMessage.copyHeaders(message)
    }

    private static func copyHeaders(_ message: UnsafePointer<rd_kafka_message_t>) -> [KafkaHeader] {
        // rd_kafka_message_headers needs a mutable pointer but only reads; the headers stay owned
        // by the message.
        var list: OpaquePointer?
        guard rd_kafka_message_headers(message, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return [] }
        var result: [KafkaHeader] = []
        let count = rd_kafka_header_cnt(list)
        result.reserveCapacity(count)
        for i in 0..<count {
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            guard rd_kafka_header_get_all(list, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR,
                  let name else { continue }
            let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) }
            result.append(KafkaHeader(key: String(cString: name), value: bytes))
        }
        return result
    }
}

/// Something the consumer reports besides messages, in the order it happened.
public enum ConsumerEvent: Sendable {
    /// The group gave this member these partitions (incrementally, under cooperative-sticky).
    case assigned([TopicPartition])
    /// These partitions were taken away. Offsets stored for them were committed first, unless
    /// `lost` is true (the member was kicked out, and another may already own them).
    case revoked([TopicPartition], lost: Bool)
    /// An error; ``KafkaError/kind`` says whether it is fatal.
    case error(KafkaError, TopicPartition?)
    /// A partition's position was outside the broker's retained range and was reset.
    case offsetReset(TopicPartition, detail: String)
    /// A new statistics snapshot (every `statistics.interval.ms`).
    case statistics(ConsumerStatistics)
}

/// What one ``KafkaConsumer/poll(maxMessages:timeout:)`` call returns.
public struct ConsumerBatch: Sendable {
    public var messages: [ConsumedMessage]
    public var events: [ConsumerEvent]
}
