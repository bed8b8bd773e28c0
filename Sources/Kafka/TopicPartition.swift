import CRdKafka

/// A topic and one of its partitions.
public struct TopicPartition: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let topic: String
    public let partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)[\(partition)]" }

    public static func < (lhs: TopicPartition, rhs: TopicPartition) -> Bool {
        (lhs.topic, lhs.partition) < (rhs.topic, rhs.partition)
    }
}

/// A topic to create, with its partition count and any topic-level configs.
public struct TopicSpec: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    public let partitions: Int
    /// Topic configs such as `retention.bytes`, sent with the create request; the broker
    /// rejects names or values it does not know.
    public var configs: [String: String]

    public init(name: String, partitions: Int, configs: [String: String] = [:]) {
        self.name = name
        self.partitions = partitions
        self.configs = configs
    }

    public var description: String { "\(name):\(partitions)" }

    /// Parses `name:partitions[,name:partitions...]`, as `postclassd broker --topics` takes it.
    /// A name without `:N` gets one partition.
    public static func parseList(_ text: String) throws(KafkaError) -> [TopicSpec] {
        var specs: [TopicSpec] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: true) {
            let parts = item.split(separator: ":", omittingEmptySubsequences: false)
            let name = parts[0].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty, parts.count <= 2, TopicSpec.isValidName(name) else {
                throw KafkaError(kind: .configuration, message:
                    "topic '\(item)' is not NAME or NAME:PARTITIONS (names use letters, digits, '.', '_' and '-')")
            }
            var count = 1
            if parts.count == 2 {
                guard let n = Int(parts[1].trimmingCharacters(in: .whitespaces)), (1...10_000).contains(n) else {
                    throw KafkaError(kind: .configuration, message:
                        "topic '\(item)': the partition count must be a whole number from 1 to 10000")
                }
                count = n
            }
            specs.append(TopicSpec(name: name, partitions: count))
        }
        guard !specs.isEmpty else {
            throw KafkaError(kind: .configuration, message: "no topics given; write them as posts:3,labels:3")
        }
        return specs
    }

    /// Kafka's rule for topic names: 1 to 249 characters of `[a-zA-Z0-9._-]`.
    public static func isValidName(_ name: String) -> Bool {
        guard (1...249).contains(name.utf8.count), name != ".", name != ".." else { return false }
        return name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2E || byte == 0x5F || byte == 0x2D
        }
    }
}

/// Conversions between Swift values and librdkafka's `rd_kafka_topic_partition_list_t`.
enum PartitionList {
    /// Reads the topic and partition of every element of a librdkafka list.
    static func read(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>?) -> [TopicPartition] {
        guard let list, let elems = list.pointee.elems else { return [] }
        return (0..<Int(list.pointee.cnt)).map { i in
            TopicPartition(topic: String(cString: elems[i].topic), partition: elems[i].partition)
        }
    }

    /// The offsets of a list's entries; nil where librdkafka has none (a negative logical offset).
    static func offsets(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>) -> [TopicPartition: Int64?] {
        guard let elems = list.pointee.elems else { return [:] }
        var result: [TopicPartition: Int64?] = [:]
        for i in 0..<Int(list.pointee.cnt) {
            let offset = elems[i].offset
            result[TopicPartition(topic: String(cString: elems[i].topic), partition: elems[i].partition)] = offset >= 0 ? offset : nil
        }
        return result
    }

    /// Runs `body` with a newly made librdkafka list (offsets set where given) and frees it after.
    static func with<R>(_ partitions: [(TopicPartition, Int64?)],
                        _ body: (UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) throws(KafkaError) -> R)
        throws(KafkaError) -> R {
        guard let list = rd_kafka_topic_partition_list_new(Int32(max(partitions.count, 1))) else {
            throw KafkaError(kind: .fatal, message: "librdkafka could not allocate a partition list")
        }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (tp, offset) in partitions {
            guard let elem = rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition) else { continue }
            if let offset { elem.pointee.offset = offset }
        }
        return try body(list)
    }
}
