import CRdKafka
import Logging

/// The few admin calls postclassd needs against a real cluster: creating topics.
public enum KafkaAdmin {
    /// Creates topics (replication factor 1 unless the cluster decides otherwise), with each
    /// spec's configs. Topics that already exist are left as they are, configs included.
    public static func createTopics(_ topics: [TopicSpec], client: KafkaClientConfiguration,
                                    logger: Logger, timeout: Duration = .seconds(15)) throws(KafkaError) {
        guard !topics.isEmpty else { return }
        let conf = try NativeConfiguration()
        try conf.set(client.orderedProperties())
        let callbacks = ClientCallbacks(logger: logger, errorSink: { _ in }, statisticsSink: { _ in })
        callbacks.install(on: conf)
        let handle = try makeClientHandle(RD_KAFKA_PRODUCER, conf)
        defer { rd_kafka_destroy(handle) }
        try withExtendedLifetime(callbacks) { () throws(KafkaError) in
            try create(topics, on: handle, timeout: timeout)
        }
    }

    private static func create(_ topics: [TopicSpec], on handle: OpaquePointer, timeout: Duration) throws(KafkaError) {
        guard let queue = rd_kafka_queue_new(handle) else {
            throw KafkaError(kind: .fatal, message: "librdkafka could not allocate a queue")
        }
        defer { rd_kafka_queue_destroy(queue) }
        var newTopics: [OpaquePointer?] = []
        defer { for topic in newTopics { rd_kafka_NewTopic_destroy(topic) } }
        for spec in topics {
            var errstr = [CChar](repeating: 0, count: 256)
            guard let topic = rd_kafka_NewTopic_new(spec.name, Int32(spec.partitions), -1, &errstr, errstr.count) else {
                throw KafkaError(kind: .configuration, message: "topic \(spec): \(String(cBuffer: errstr))")
            }
            newTopics.append(topic)
            for (key, value) in spec.configs.sorted(by: { $0.key < $1.key }) {
                let err = rd_kafka_NewTopic_set_config(topic, key, value)
                guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    throw KafkaError(err, "topic \(spec): could not set config \(key)=\(value)")
                }
            }
        }
        let options = rd_kafka_AdminOptions_new(handle, RD_KAFKA_ADMIN_OP_CREATETOPICS)
        defer { rd_kafka_AdminOptions_destroy(options) }
        var errstr = [CChar](repeating: 0, count: 256)
        _ = rd_kafka_AdminOptions_set_operation_timeout(options, timeout.milliseconds, &errstr, errstr.count)
        _ = rd_kafka_AdminOptions_set_request_timeout(options, timeout.milliseconds, &errstr, errstr.count)
        newTopics.withUnsafeMutableBufferPointer { buffer in
            rd_kafka_CreateTopics(handle, buffer.baseAddress, buffer.count, options, queue)
        }
        guard let event = rd_kafka_queue_poll(queue, timeout.milliseconds + 1000) else {
            throw KafkaError(kind: .transient, message: "creating topics timed out after \(timeout)")
        }
        defer { rd_kafka_event_destroy(event) }
        let err = rd_kafka_event_error(event)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(err, "creating topics failed: \(String(cString: rd_kafka_event_error_string(event)))")
        }
        guard let result = rd_kafka_event_CreateTopics_result(event) else { return }
        var count = 0
        guard let results = rd_kafka_CreateTopics_result_topics(result, &count) else { return }
        for i in 0..<count {
            let topicErr = rd_kafka_topic_result_error(results[i])
            guard topicErr != RD_KAFKA_RESP_ERR_NO_ERROR, topicErr != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS else { continue }
            let name = String(cString: rd_kafka_topic_result_name(results[i]))
            let text = rd_kafka_topic_result_error_string(results[i]).map { String(cString: $0) } ?? ""
            throw KafkaError(topicErr, "could not create topic \(name): \(text)")
        }
    }
}
