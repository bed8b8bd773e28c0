import Foundation
import Kafka
import Logging
import Testing

/// The transactional producer over real brokers: what `read_committed` readers see of committed
/// and aborted transactions, offsets committed with a transaction, how librdkafka's error flags
/// map to ``KafkaError/Kind``, and fencing by a second producer with the same transactional id.
@Suite(.serialized) struct TransactionTests {
    private func transactionalProducer(_ cluster: TestCluster, id: String, log: DeliveryLog = DeliveryLog()) throws -> KafkaProducer {
        let producer = try cluster.producer(configure: { $0.transactionalID = id; $0.transactionTimeout = .seconds(10) },
                                            onDelivery: log.record)
        try producer.initTransactions(timeout: .seconds(30))
        return producer
    }

    /// Reads `topic` from the start with the given isolation level until nothing new comes for 2 s.
    private func readAll(_ cluster: TestCluster, _ topic: String, isolation: String) throws -> [String] {
        let consumer = try cluster.consumer(group: "reader-\(UUID())", topics: [topic]) { $0.client.properties["isolation.level"] = isolation }
        defer { consumer.close() }
        var values: [String] = []
        var last = ContinuousClock.now
        _ = pollUntil(timeout: .seconds(30)) {
            let batch = consumer.poll(maxMessages: 100, timeout: .milliseconds(100))
            let assigned = batch.events.contains { if case .assigned = $0 { true } else { false } }
            if !batch.messages.isEmpty || assigned { last = .now }
            values += batch.messages.map { String(decoding: $0.value ?? [], as: UTF8.self) }
            return ContinuousClock.now - last > .seconds(2)
        }
        return values
    }

    @Test("read_committed sees a committed transaction's records and the group its offsets; an aborted one's records are skipped",
          .enabled(if: ClusterKind.available.contains(.external), "needs KAFKA_BOOTSTRAP (the embedded broker hands aborted records to read_committed readers)"))
    func committedAndAbortedOnRealBroker() throws {
        let cluster = try TestCluster(.external)
        let topic = try cluster.makeTopic("txn", partitions: 1)
        let input = try cluster.makeTopic("txn-in", partitions: 1)
        let group = "txn-group-\(UUID())"
        let producer = try transactionalProducer(cluster, id: "txn-test-\(UUID())")
        defer { producer.close(timeout: .seconds(5)) }
        // A consumer of the group, for its metadata: it must own its partition (generation > 0).
        let consumer = try cluster.consumer(group: group, topics: [input]) { $0.autoCommit = false }
        defer { consumer.close() }
        #expect(pollUntil(timeout: .seconds(30)) {
            _ = consumer.poll(maxMessages: 1, timeout: .milliseconds(100))
            return !((try? consumer.assignment()) ?? []).isEmpty
        })

        try producer.beginTransaction()
        try producer.send(ProducerRecord(topic: topic, value: Array("aborted".utf8)), token: 1)
        try producer.flush(timeout: .seconds(10))
        try producer.abortTransaction(timeout: .seconds(10))

        try producer.beginTransaction()
        try producer.send(ProducerRecord(topic: topic, value: Array("committed".utf8)), token: 2)
        try producer.sendOffsets([TopicPartition(topic: input, partition: 0): 42], group: consumer.groupMetadata(), timeout: .seconds(10))
        try producer.commitTransaction(timeout: .seconds(10))

        #expect(try readAll(cluster, topic, isolation: "read_committed") == ["committed"])
        #expect(try readAll(cluster, topic, isolation: "read_uncommitted") == ["aborted", "committed"])
        let committed = try consumer.committedOffsets([TopicPartition(topic: input, partition: 0)], timeout: .seconds(10))
        #expect((committed[TopicPartition(topic: input, partition: 0)] ?? nil) == 42, "\(committed)")
    }

    @Test("an EndTxn refused by the broker is an abortable error; after the abort a new transaction commits")
    func endTxnErrorIsAbortable() throws {
        var logger = Logger(label: "test.txn")
        logger.logLevel = .error
        let broker = try EmbeddedBroker(topics: [TopicSpec(name: "out", partitions: 1)], logger: logger)
        defer { broker.close() }
        var client = KafkaClientConfiguration(bootstrapServers: broker.bootstrapServers)
        client.statisticsInterval = .zero
        var config = KafkaProducerConfiguration(client: client)
        config.transactionalID = "txn-errors"
        let log = DeliveryLog()
        let producer = try KafkaProducer(configuration: config, logger: logger, onDelivery: log.record)
        defer { producer.close(timeout: .seconds(5)) }
        try producer.initTransactions(timeout: .seconds(30))

        try producer.beginTransaction()
        try producer.send(ProducerRecord(topic: "out", value: [1]), token: 1)
        broker.failNextRequests(apiKey: KafkaAPIKey.endTxn, count: 1, with: KafkaErrorCode.unknownProducerID)
        let error = #expect(throws: KafkaError.self) { try producer.commitTransaction(timeout: .seconds(10)) }
        #expect(error?.kind == .abortable, "\(String(describing: error))")
        try producer.abortTransaction(timeout: .seconds(10))

        try producer.beginTransaction()
        try producer.send(ProducerRecord(topic: "out", value: [2]), token: 2)
        try producer.commitTransaction(timeout: .seconds(10))
        #expect(log.wait(for: 2, timeout: .seconds(10)))
        #expect(log.all[2]?.error == nil)
    }

    @Test("a second producer with the same transactional id fences the first: its next commit is fatal and says fenced",
          .enabled(if: ClusterKind.available.contains(.external), "needs KAFKA_BOOTSTRAP (librdkafka 2.0.2's mock cluster does not fence: the first producer's commit succeeds)"))
    func secondProducerFencesFirst() throws {
        let cluster = try TestCluster(.external)
        let topic = try cluster.makeTopic("fence", partitions: 1)
        let id = "fence-\(UUID())"
        let first = try transactionalProducer(cluster, id: id)
        defer { first.close(timeout: .seconds(2)) }
        try first.beginTransaction()
        try first.send(ProducerRecord(topic: topic, value: [1]), token: 1)
        try first.flush(timeout: .seconds(10))
        let second = try transactionalProducer(cluster, id: id)
        defer { second.close(timeout: .seconds(2)) }
        let error = #expect(throws: KafkaError.self) { try first.commitTransaction(timeout: .seconds(10)) }
        #expect(error?.kind == .fatal && (error?.isFencing == true || first.fatalError?.isFencing == true),
                "\(String(describing: error)); fatal: \(String(describing: first.fatalError))")
    }
}
