import CRdKafka
import Logging
import Synchronization

/// A Kafka-protocol cluster inside this process: librdkafka's mock cluster, listening on random
/// loopback ports.
///
/// It serves demos and tests, not production. Know its limits: it keeps only about 5 MB per
/// partition (older messages are trimmed; the size is hard-coded in librdkafka 2.0.2), keeps
/// nothing on disk, and implements few admin APIs (no CreateTopics: topics are created here, or
/// automatically with 4 partitions when a client first uses one).
public final class EmbeddedBroker: @unchecked Sendable {
    // @unchecked: the mock cluster is driven by its own thread and the calls made here are
    // thread-safe; `handleGuard` keeps every call out of a destroyed cluster.
    private let handle: OpaquePointer
    private let cluster: OpaquePointer
    private let callbacks: ClientCallbacks
    private let handleGuard = HandleGuard()

    /// `host:port,...` of every broker, for `bootstrap.servers`.
    public let bootstrapServers: String

    /// Starts `brokers` mock brokers and creates `topics`.
    public init(brokers: Int = 1, topics: [TopicSpec], logger: Logger) throws(KafkaError) {
        guard (1...16).contains(brokers) else {
            throw KafkaError(kind: .configuration, message: "the embedded broker runs 1 to 16 brokers, not \(brokers)")
        }
        // The mock cluster lives inside a client handle, which also gives it a log callback.
        callbacks = ClientCallbacks(logger: logger, errorSink: { error in
            logger.warning("embedded broker: \(error)")
        })
        let conf = try NativeConfiguration()
        // This handle only hosts the cluster; keep its notices (such as "no bootstrap.servers
        // configured") out of the log, but not its warnings and errors.
        try conf.set("log_level", "4")
        callbacks.install(on: conf)
        handle = try makeClientHandle(RD_KAFKA_PRODUCER, conf)
        guard let mock = rd_kafka_mock_cluster_new(handle, Int32(brokers)) else {
            rd_kafka_destroy(handle)
            throw KafkaError(kind: .fatal, message: "librdkafka could not start the mock cluster (are loopback sockets allowed?)")
        }
        cluster = mock
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(mock))
        do {
            for topic in topics { try createTopic(topic) }
        } catch {
            close()
            throw error
        }
    }

    deinit {
        close()
    }

    /// Creates a topic with every partition replicated on one broker.
    public func createTopic(_ spec: TopicSpec) throws(KafkaError) {
        let err = try handleGuard.run("embedded broker", "create topic \(spec.name)") { rd_kafka_mock_topic_create(cluster, spec.name, Int32(spec.partitions), 1) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(err, "could not create topic \(spec) on the embedded broker")
        }
    }

    /// Makes the next `count` requests of a kind fail with `error`, as a real broker's refusal
    /// would (for testing error paths). `apiKey` is the Kafka protocol's, e.g. 0 for Produce.
    public func failNextRequests(apiKey: Int16, count: Int, with error: Int32) {
        let errors = [rd_kafka_resp_err_t](repeating: rd_kafka_resp_err_t(rawValue: error), count: count)
        _ = handleGuard.enter { rd_kafka_mock_push_request_errors_array(cluster, apiKey, count, errors) }
    }

    /// Takes broker `id` (1 ... brokers) down, as a crashed or restarting broker: its connections
    /// are closed and new ones refused until ``setBrokerUp(_:)`` (for testing outages).
    public func setBrokerDown(_ id: Int32) throws(KafkaError) {
        let err = try handleGuard.run("embedded broker", "take broker \(id) down") { rd_kafka_mock_broker_set_down(cluster, id) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, "could not take embedded broker \(id) down") }
    }

    /// Brings broker `id` back after ``setBrokerDown(_:)``.
    public func setBrokerUp(_ id: Int32) throws(KafkaError) {
        let err = try handleGuard.run("embedded broker", "bring broker \(id) up") { rd_kafka_mock_broker_set_up(cluster, id) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, "could not bring embedded broker \(id) up") }
    }

    /// Stops the brokers and frees everything. Later calls do nothing.
    public func close() {
        guard handleGuard.close() else { return }
        rd_kafka_mock_cluster_destroy(cluster)
        rd_kafka_destroy(handle)
    }
}

/// Kafka protocol request kinds, for ``EmbeddedBroker/failNextRequests(apiKey:count:with:)``.
public enum KafkaAPIKey {
    public static let produce: Int16 = 0
    public static let fetch: Int16 = 1
    public static let offsetCommit: Int16 = 8
    public static let initProducerID: Int16 = 22
    public static let addPartitionsToTxn: Int16 = 24
    public static let addOffsetsToTxn: Int16 = 25
    public static let endTxn: Int16 = 26
    public static let txnOffsetCommit: Int16 = 28
}

/// Kafka's numeric error codes, for ``EmbeddedBroker/failNextRequests(apiKey:count:with:)``.
public enum KafkaErrorCode {
    public static let messageTooLarge: Int32 = RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE.rawValue
    public static let notLeaderForPartition: Int32 = RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION.rawValue
    public static let notEnoughReplicas: Int32 = RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS.rawValue
    public static let invalidRecord: Int32 = RD_KAFKA_RESP_ERR_INVALID_RECORD.rawValue
    public static let topicAuthorizationFailed: Int32 = RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED.rawValue
    public static let invalidProducerEpoch: Int32 = RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH.rawValue
    public static let outOfOrderSequenceNumber: Int32 = RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER.rawValue
    public static let coordinatorNotAvailable: Int32 = RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE.rawValue
    public static let groupAuthorizationFailed: Int32 = RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED.rawValue
    public static let unknownProducerID: Int32 = RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID.rawValue
    public static let producerFenced: Int32 = RD_KAFKA_RESP_ERR_PRODUCER_FENCED.rawValue
}
