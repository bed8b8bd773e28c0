/// Settings of a producer.
///
/// The local queue is bounded by both count and bytes: when it is full, ``KafkaProducer/send(_:token:timeout:)``
/// waits for deliveries (pushing back on the caller) instead of letting memory grow.
public struct KafkaProducerConfiguration: Sendable {
    public var client: KafkaClientConfiguration
    /// `enable.idempotence`: no duplicates or reordering from the producer's own retries.
    public var idempotent: Bool = true
    /// `linger.ms`: how long to wait to fill a batch before sending it.
    public var linger: Duration = .milliseconds(5)
    /// `queue.buffering.max.messages`: messages waiting for delivery, at most.
    public var maxQueuedMessages: Int = 100_000
    /// `queue.buffering.max.kbytes` (given here in bytes): bytes waiting for delivery, at most.
    public var maxQueuedBytes: Int = 128 * 1024 * 1024
    /// `message.max.bytes`: the largest message the client sends; larger ones fail at once.
    public var maxMessageBytes: Int = 1_000_000
    /// `message.timeout.ms`: a message not delivered by then fails with a delivery error.
    public var messageTimeout: Duration = .seconds(300)
    /// `transactional.id`: set, the producer is transactional (``KafkaProducer/initTransactions(timeout:)``
    /// must run before the first send, and every send belongs to a transaction). One id per
    /// producer instance, the same across its restarts: a newer producer with the id fences the
    /// older one and aborts its open transaction.
    public var transactionalID: String?
    /// `transaction.timeout.ms`: the coordinator aborts a transaction left open this long (a
    /// crashed producer that never comes back). Must not exceed the broker's
    /// `transaction.max.timeout.ms`. Also bounds `message.timeout.ms`, which librdkafka requires.
    public var transactionTimeout: Duration = .seconds(60)

    public init(client: KafkaClientConfiguration) {
        self.client = client
    }

    func orderedProperties() -> [(String, String)] {
        var base = client.orderedProperties()
        let typed: [(String, String)] = [
            ("enable.idempotence", idempotent ? "true" : "false"),
            ("linger.ms", String(linger.milliseconds)),
            ("queue.buffering.max.messages", String(maxQueuedMessages)),
            ("queue.buffering.max.kbytes", String(max(1, maxQueuedBytes / 1024))),
            ("message.max.bytes", String(maxMessageBytes)),
            ("message.timeout.ms", String(transactionalID == nil ? messageTimeout.milliseconds
                                                                 : min(messageTimeout, transactionTimeout).milliseconds)),
        ] + (transactionalID.map { id in
            [("transactional.id", id), ("transaction.timeout.ms", String(transactionTimeout.milliseconds))]
        } ?? [])
        base.insert(contentsOf: typed, at: 3)
        return base
    }
}

/// A record to send.
public struct ProducerRecord: Sendable {
    public var topic: String
    /// The partition, or nil to let the partitioner choose from the key.
    public var partition: Int32?
    public var key: [UInt8]?
    public var value: [UInt8]?
    public var headers: [KafkaHeader]
    /// Milliseconds since the epoch, or nil for the time of sending.
    public var timestampMs: Int64?

    public init(topic: String, partition: Int32? = nil, key: [UInt8]? = nil, value: [UInt8]?,
                headers: [KafkaHeader] = [], timestampMs: Int64? = nil) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
        self.timestampMs = timestampMs
    }
}

/// The outcome of one sent record, reported exactly once per record that `send` accepted.
public struct DeliveryReport: Sendable {
    /// The token given to `send`, to find the caller's own record.
    public let token: UInt64
    public let topicPartition: TopicPartition
    /// Where the record landed; nil when delivery failed.
    public let offset: Int64?
    /// Why delivery failed; nil when it succeeded.
    public let error: KafkaError?
}
