import Foundation
import Kafka
import Logging
import Synchronization

/// The Kafka half of `postclassd check`: the brokers answer, the input topics exist and the group
/// can read its offsets, the output topics exist (and, with `--write-test`, take a record). The
/// clients are configured exactly as the daemon's (``PipelineClients``), credentials included.
struct KafkaChecks {
    /// The settings with the credentials merged in.
    let settings: DaemonSettings
    let bootstrap: String
    /// The most any one step (metadata, offsets, the test deliveries) may take.
    let timeout: Duration
    let writeTest: Bool
    let logger: Logger

    private var client: KafkaClientConfiguration {
        var client = KafkaClientConfiguration(bootstrapServers: bootstrap)
        client.properties = settings.kafkaProperties
        client.statisticsInterval = .zero
        return client
    }

    func run(_ report: inout CheckReport) {
        let producerConfig = PipelineClients.producerConfiguration(client, settings)
        let metadata: ClusterMetadata
        do {
            metadata = try KafkaAdmin.metadata(client: producerConfig.client, logger: logger, timeout: timeout)
        } catch {
            report.fail("brokers \(bootstrap)", error.description, todo: error.kind == .configuration
                ? "Fix that Kafka property (--kafka, POSTCLASSD_KAFKA or the config file)"
                : "Check --brokers (POSTCLASSD_BROKERS), that the brokers are up and reachable from this host, and security.protocol and the credentials")
            return
        }
        report.ok("brokers \(bootstrap)", "\(metadata.brokers.count) broker(s) in the cluster: \(metadata.brokers.map(\.description).joined(separator: ", "))")

        var readable: [TopicPartition] = []
        for topic in settings.inputTopics {
            if let partitions = checkTopic(topic, role: "input topic", in: metadata, &report, okDetail: "") {
                readable += partitions.map { TopicPartition(topic: topic, partition: $0) }
            }
        }
        if !readable.isEmpty { checkGroup(readable, &report) }

        let outputs = [("output topic", settings.outputTopic), ("dead-letter topic", settings.dlqTopic)]
            + Set(settings.routes.map(\.topic)).sorted().map { ("routed topic", $0) }
        // With --write-test, a topic's line comes after its test delivery, and says both.
        var writable: [(role: String, topic: String, partitions: Int)] = []
        for (role, topic) in outputs {
            let detail = writeTest ? nil : "write not tested (--write-test sends one test record)"
            if let partitions = checkTopic(topic, role: role, in: metadata, &report, okDetail: detail) {
                writable.append((role, topic, partitions.count))
            }
        }
        if writeTest && !writable.isEmpty { checkWrites(writable, producerConfig, &report) }
    }

    /// Checks that a topic exists and every partition has a leader; returns its partitions (nil
    /// when it failed). Reports OK, with `okDetail` added, only when `okDetail` is not nil.
    private func checkTopic(_ topic: String, role: String, in metadata: ClusterMetadata, _ report: inout CheckReport,
                            okDetail: String?) -> [Int32]? {
        let what = "\(role) \(topic)"
        guard let found = metadata.topics[topic] else {
            report.fail(what, "it does not exist (or this client may not describe it)",
                        todo: "Create it, or name an existing topic in the settings; with ACLs, grant this principal Describe on it")
            return nil
        }
        if let error = found.error {
            report.fail(what, error.description, todo: error.kind == .denied ? "Grant this principal access to the topic" : "Check the topic on the cluster")
            return nil
        }
        let leaderless = found.partitions.filter { $0.leader < 0 || $0.error != nil }
        guard leaderless.isEmpty, !found.partitions.isEmpty else {
            let which = leaderless.map { "\($0.id)" }.joined(separator: ", ")
            report.fail(what, found.partitions.isEmpty ? "it has no partitions" : "partition(s) \(which) have no leader",
                        todo: "Wait for the cluster to elect leaders, or repair the topic")
            return nil
        }
        if let okDetail {
            report.ok(what, ["\(found.partitions.count) partition(s), each with a leader", okDetail].filter { !$0.isEmpty }.joined(separator: "; "))
        }
        return found.partitions.map(\.id)
    }

    /// The group's committed offsets for the input partitions: needs the group coordinator and
    /// the principal's Describe/Read on the group and the topics, as consuming does.
    private func checkGroup(_ partitions: [TopicPartition], _ report: inout CheckReport) {
        let topics = Set(partitions.map(\.topic)).sorted()
        let what = "group \(settings.groupID) on \(topics.joined(separator: ", "))"
        let consumer: KafkaConsumer
        do {
            consumer = try KafkaConsumer(configuration: PipelineClients.consumerConfiguration(client, settings), logger: logger)
        } catch {
            report.fail(what, "the consumer could not be created: \(error.description)", todo: "Fix that Kafka property")
            return
        }
        defer { consumer.close() }
        do {
            let committed = try consumer.committedOffsets(partitions, timeout: timeout)
            let withOffsets = committed.values.filter { $0 != nil }.count
            report.ok(what, "committed offsets read: \(withOffsets) of \(partitions.count) partition(s) have one"
                + " (the others start where auto.offset.reset says, earliest unless set)")
        } catch {
            report.fail(what, "could not read the group's committed offsets: \(error.description)",
                        todo: "Check the group coordinator, and grant this principal Read on group \(settings.groupID) and Describe and Read on the topics")
        }
    }

    /// Sends one test record to each topic with the daemon's producer settings and waits for
    /// each delivery report.
    private func checkWrites(_ topics: [(role: String, topic: String, partitions: Int)], _ config: KafkaProducerConfiguration,
                             _ report: inout CheckReport) {
        let reports = Mutex<[UInt64: DeliveryReport]>([:])
        let lastError = Mutex<KafkaError?>(nil)
        let producer: KafkaProducer
        do {
            producer = try KafkaProducer(configuration: config, logger: logger,
                                         onDelivery: { delivery in reports.withLock { $0[delivery.token] = delivery } },
                                         onError: { error in lastError.withLock { $0 = error } })
        } catch {
            for (role, topic, _) in topics {
                report.fail("\(role) \(topic)", "the producer could not be created: \(error.description)", todo: "Fix that Kafka property")
            }
            return
        }
        let value = #"{"postclassd_check":"a test record from postclassd check --write-test; ignore it","host":"\#(ProcessInfo.processInfo.hostName)"}"#
        var refused: [Int: KafkaError] = [:]
        for (i, entry) in topics.enumerated() {
            let record = ProducerRecord(topic: entry.topic, key: Array("postclassd-check".utf8), value: Array(value.utf8),
                                        headers: [KafkaHeader(key: "postclassd.check", string: "write-test")])
            do {
                try producer.send(record, token: UInt64(i), timeout: timeout)
            } catch {
                refused[i] = error
            }
        }
        // Not producer.flush: a delivery that fails for a passing reason is retried for
        // message.timeout.ms (minutes); the check waits `timeout`, then reports what is missing.
        let deadline = ContinuousClock.now + timeout
        while reports.withLock({ $0.count }) + refused.count < topics.count && ContinuousClock.now < deadline {
            Thread.sleep(forTimeInterval: 0.02)
        }
        let delivered = reports.withLock { $0 }
        for (i, (role, topic, partitions)) in topics.enumerated() {
            let what = "\(role) \(topic)"
            if let error = refused[i] ?? delivered[UInt64(i)]?.error {
                report.fail(what, "the test record was refused: \(error.description)",
                            todo: error.kind == .denied ? "Grant this principal Write on topic \(topic)" : "Check the topic and the producer settings")
            } else if let delivery = delivered[UInt64(i)] {
                report.ok(what, "\(partitions) partition(s), each with a leader; wrote a test record"
                    + " (partition \(delivery.topicPartition.partition), offset \(delivery.offset.map(String.init) ?? "?"))")
            } else {
                let cause = lastError.withLock { $0 }.map { "; last client error: \($0.description)" } ?? ""
                report.fail(what, "the test record was not delivered within \(timeout)\(cause)",
                            todo: "Check that the topic's leaders are reachable from this host and this principal may write to it")
            }
        }
        // Whatever is still undelivered is purged, not left to arrive after the check said FAIL.
        producer.close(timeout: .zero)
    }
}
