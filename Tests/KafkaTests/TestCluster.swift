import Foundation
import Kafka
import Logging
import Testing

/// The brokers the integration suite runs against: always the embedded broker, and a real one
/// (noida-db in CI) when `KAFKA_BOOTSTRAP` is set.
enum ClusterKind: String, CaseIterable, CustomStringConvertible, Sendable {
    case embedded
    case external

    var description: String { rawValue }

    /// The kinds available in this run.
    static var available: [ClusterKind] {
        ProcessInfo.processInfo.environment["KAFKA_BOOTSTRAP"].map { $0.isEmpty ? [.embedded] : [.embedded, .external] }
            ?? [.embedded]
    }
}

/// A cluster for one test, with topics of its own (unique names, so tests never see each other's data).
final class TestCluster: @unchecked Sendable {
    let kind: ClusterKind
    let bootstrapServers: String
    private let embedded: EmbeddedBroker?
    let logger: Logger

    init(_ kind: ClusterKind) throws {
        self.kind = kind
        var logger = Logger(label: "test.kafka")
        logger.logLevel = .warning
        self.logger = logger
        switch kind {
        case .embedded:
            let broker = try EmbeddedBroker(brokers: 1, topics: [], logger: logger)
            embedded = broker
            bootstrapServers = broker.bootstrapServers
        case .external:
            embedded = nil
            bootstrapServers = ProcessInfo.processInfo.environment["KAFKA_BOOTSTRAP"] ?? ""
        }
    }

    deinit {
        embedded?.close()
    }

    /// Creates a topic named after `prefix` plus a random suffix, and returns its name.
    func makeTopic(_ prefix: String, partitions: Int) throws -> String {
        let name = "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
        let spec = TopicSpec(name: name, partitions: partitions)
        if let embedded {
            try embedded.createTopic(spec)
        } else {
            try KafkaAdmin.createTopics([spec], client: clientConfiguration(), logger: logger)
        }
        return name
    }

    /// Makes the broker refuse the next produce requests (embedded broker only).
    func failNextProduceRequests(_ count: Int, with code: Int32) {
        embedded?.failNextRequests(apiKey: KafkaAPIKey.produce, count: count, with: code)
    }

    func clientConfiguration() -> KafkaClientConfiguration {
        var client = KafkaClientConfiguration(bootstrapServers: bootstrapServers)
        client.statisticsInterval = .milliseconds(200)
        return client
    }

    func consumer(group: String, topics: [String], configure: (inout KafkaConsumerConfiguration) -> Void = { _ in }) throws -> KafkaConsumer {
        var config = KafkaConsumerConfiguration(client: clientConfiguration(), groupID: group)
        config.sessionTimeout = .seconds(6)
        configure(&config)
        let consumer = try KafkaConsumer(configuration: config, logger: logger)
        try consumer.subscribe(topics)
        return consumer
    }

    func producer(configure: (inout KafkaProducerConfiguration) -> Void = { _ in },
                  onDelivery: @escaping @Sendable (DeliveryReport) -> Void) throws -> KafkaProducer {
        var config = KafkaProducerConfiguration(client: clientConfiguration())
        config.linger = .milliseconds(2)
        configure(&config)
        return try KafkaProducer(configuration: config, logger: logger, onDelivery: onDelivery)
    }
}

/// Collects delivery reports from the producer's thread.
final class DeliveryLog: @unchecked Sendable {
    private let lock = NSLock()
    private var reports: [UInt64: DeliveryReport] = [:]

    func record(_ report: DeliveryReport) {
        lock.withLock { reports[report.token] = report }
    }

    var all: [UInt64: DeliveryReport] { lock.withLock { reports } }
    var count: Int { lock.withLock { reports.count } }

    /// Waits until `expected` reports are in, or `timeout` passes.
    func wait(for expected: Int, timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while count < expected {
            if ContinuousClock.now > deadline { return false }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return true
    }
}

/// Drives a set of consumers from the test's thread, collecting what they receive.
struct Collected {
    var messages: [ConsumedMessage] = []
    var assigned: Set<TopicPartition> = []
    var events: [ConsumerEvent] = []

    mutating func absorb(_ batch: ConsumerBatch) {
        messages += batch.messages
        for event in batch.events {
            events.append(event)
            switch event {
            case .assigned(let tps): assigned.formUnion(tps)
            case .revoked(let tps, _): assigned.subtract(tps)
            default: break
            }
        }
    }
}

/// Polls until `done` holds or `timeout` passes; returns whether `done` held.
func pollUntil(timeout: Duration, _ step: () throws -> Bool) rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try step() { return true }
    }
    return false
}

/// A consumer in a fresh group on one new topic, polled until it owns its partitions, and a
/// producer for that topic; both are closed by the caller.
struct AssignedTopic {
    let topic: String
    let producer: KafkaProducer
    let consumer: KafkaConsumer
    var collected = Collected()

    init(_ cluster: TestCluster, prefix: String, partitions: Int = 1, deliveries: DeliveryLog) throws {
        topic = try cluster.makeTopic(prefix, partitions: partitions)
        producer = try cluster.producer(onDelivery: deliveries.record)
        consumer = try cluster.consumer(group: "g-\(UUID())", topics: [topic])
        var collected = Collected()
        let consumer = consumer
        let assigned = pollUntil(timeout: .seconds(20)) {
            collected.absorb(consumer.poll(maxMessages: 100, timeout: .milliseconds(100)))
            return !collected.assigned.isEmpty
        }
        self.collected = collected
        #expect(assigned, "no partitions of \(topic) assigned within 20 s")
    }
}
