import CRdKafka
import Logging
import Synchronization

/// What a cluster says about itself in a metadata response: the brokers that answered for it and
/// every topic this client may describe, with each partition's leader.
public struct ClusterMetadata: Sendable {
    /// One broker as the cluster advertises it.
    public struct Broker: Sendable, CustomStringConvertible {
        public let id: Int32
        public let host: String
        public let port: Int32
        public var description: String { "\(id) at \(host):\(port)" }
    }

    /// One partition: its leader (-1 when it has none) and the error the cluster gave for it.
    public struct Partition: Sendable {
        public let id: Int32
        public let leader: Int32
        public let error: KafkaError?
    }

    /// One topic: its partitions, or the error the cluster gave instead (an ACL refusal, ...).
    public struct Topic: Sendable {
        public let name: String
        public let partitions: [Partition]
        public let error: KafkaError?
    }

    public let brokers: [Broker]
    /// By topic name. Internal topics (`__consumer_offsets`) included.
    public let topics: [String: Topic]
}

extension KafkaAdmin {
    /// Asks the cluster for its metadata, all topics at once, waiting at most `timeout`.
    ///
    /// An all-topics request never creates a topic, whatever `auto.create.topics.enable` says on
    /// the broker (a request naming topics may), so this is safe for a preflight that must not
    /// change the cluster. When no broker answers in time, the error says so and quotes the last
    /// error the client reported (connection refused, authentication failed, ...).
    public static func metadata(client: KafkaClientConfiguration, logger: Logger,
                                timeout: Duration = .seconds(10)) throws(KafkaError) -> ClusterMetadata {
        let conf = try NativeConfiguration()
        try conf.set(client.orderedProperties())
        let lastError = Mutex<KafkaError?>(nil)
        let callbacks = ClientCallbacks(logger: logger, errorSink: { error in lastError.withLock { $0 = error } },
                                        statisticsSink: { _ in })
        callbacks.install(on: conf)
        let handle = try makeClientHandle(RD_KAFKA_PRODUCER, conf)
        defer { rd_kafka_destroy(handle) }
        return try withExtendedLifetime(callbacks) { () throws(KafkaError) -> ClusterMetadata in
            var raw: UnsafePointer<rd_kafka_metadata>?
            let err = rd_kafka_metadata(handle, 1, nil, &raw, timeout.milliseconds)
            // The error callback is served by rd_kafka_poll: serve it so a refusal's reason is seen.
            rd_kafka_poll(handle, 0)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let raw else {
                let failed = KafkaError(err, "")
                let what = err == RD_KAFKA_RESP_ERR__TIMED_OUT || err == RD_KAFKA_RESP_ERR__TRANSPORT
                    ? "no broker answered a metadata request within \(timeout)" : "the metadata request failed"
                // The client's last error says why (refused, name unknown, authentication failed)
                // better than the request's own code (timed out, transport failure).
                guard let cause = lastError.withLock({ $0 }) else { throw KafkaError(err, what) }
                throw KafkaError(kind: cause.kind == .denied ? .denied : failed.kind, code: failed.code, codeName: failed.codeName,
                                 message: "\(what); last client error: \(cause.message)")
            }
            defer { rd_kafka_metadata_destroy(raw) }
            return ClusterMetadata(raw.pointee)
        }
    }
}

extension ClusterMetadata {
    /// Copies librdkafka's metadata out of its buffers.
    init(_ md: rd_kafka_metadata) {
        brokers = (0..<Int(md.broker_cnt)).compactMap { i in
            guard let b = md.brokers?[i] else { return nil }
            return Broker(id: b.id, host: b.host.map { String(cString: $0) } ?? "", port: b.port)
        }
        var topics: [String: Topic] = [:]
        for i in 0..<Int(md.topic_cnt) {
            guard let t = md.topics?[i], let name = t.topic.map({ String(cString: $0) }) else { continue }
            let partitions = (0..<Int(t.partition_cnt)).compactMap { j -> Partition? in
                guard let p = t.partitions?[j] else { return nil }
                return Partition(id: p.id, leader: p.leader,
                                 error: p.err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError(p.err, "partition \(name)[\(p.id)]"))
            }
            topics[name] = Topic(name: name, partitions: partitions,
                                 error: t.err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError(t.err, "topic \(name)"))
        }
        self.topics = topics
    }
}
