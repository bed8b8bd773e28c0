import ArgumentParser
import Foundation
import Kafka
import Logging
import Synchronization

/// Drivers for the Kafka-layer benchmark (bench/kafka/run.sh): a feeder, the Swift pass-through
/// under test, and topic creation for brokers that support CreateTopics.
@main
struct KafkaBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kafka-bench",
        abstract: "Kafka-layer benchmark drivers.",
        subcommands: [Feed.self, Passthrough.self, CreateTopics.self])
}

struct CommonOptions: ParsableArguments {
    @Option(help: "bootstrap.servers") var brokers: String
    @Option(help: "How long to run, in seconds.") var duration: Double = 30
}

func quietLogger() -> Logger {
    var logger = Logger(label: "kafka-bench")
    logger.logLevel = .error
    return logger
}

/// Produces fixed-size records into a topic for `duration`, as fast as the system under test
/// consumes them: it keeps each partition's backlog (produced but not yet committed by the
/// system's group) under `max-backlog` bytes. That keeps every system busy without ever letting
/// it fall into the embedded broker's trimmed range (about 5 MB per partition), and keeps a
/// slow broker from drowning in data no one reads.
struct Feed: ParsableCommand {
    @OptionGroup var common: CommonOptions
    @Option var topic: String
    @Option var partitions: Int32
    @Option(help: "The consumer group of the system under test, whose commits pace the feed.") var group: String = ""
    @Option(help: "Instead of pacing: write exactly this many records to every partition, then stop.") var perPartition: Int?
    @Option(help: "Value size in bytes.") var size: Int = 1024
    @Option(help: "Bytes a partition may hold ahead of the group's committed offset.") var maxBacklog: Int = 4_000_000
    @Option(help: "Records per second at most (0: as fast as the group's commits allow).") var rate: Double = 0
    @Option(help: "linger.ms of the feeder's producer.") var lingerMs: Int = 5
    @Option(help: "How often to read the group's committed offsets, in ms.") var checkIntervalMs: Int = 50
    @Flag(help: "Write valid postclassd posts ({\"id\", \"text\"}, padded to --size) instead of opaque bytes.") var posts = false

    func run() throws {
        let produced = Mutex([Int32: Int64]())  // partition -> next offset (high watermark)
        var config = KafkaProducerConfiguration(client: KafkaClientConfiguration(bootstrapServers: common.brokers))
        config.client.statisticsInterval = .zero
        config.maxQueuedBytes = 32 * 1024 * 1024
        config.linger = .milliseconds(lingerMs)
        config.maxMessageBytes = max(1_000_000, size * 2)
        let producer = try KafkaProducer(configuration: config, logger: quietLogger(), onDelivery: { report in
            guard let offset = report.offset else { return }
            produced.withLock { $0[report.topicPartition.partition] = max($0[report.topicPartition.partition] ?? 0, offset + 1) }
        })
        var payload = [UInt8](repeating: 0, count: size)
        for i in payload.indices { payload[i] = UInt8(truncatingIfNeeded: i &* 31 &+ 7) }
        if posts {
            let head = Array(#"{"id":"bench","text":""#.utf8), tail = Array(#""}"#.utf8)
            payload = head + [UInt8](repeating: UInt8(ascii: "a"), count: max(0, size - head.count - tail.count)) + tail
        }
        if let perPartition {
            var token: UInt64 = 0
            for _ in 0..<perPartition {
                for p in 0..<partitions {
                    try producer.send(ProducerRecord(topic: topic, partition: p, value: payload), token: token)
                    token += 1
                }
            }
            producer.close(timeout: .seconds(30))
            print(#"{"fed": \#(produced.withLock { $0.values.reduce(0, +) })}"#)
            return
        }
        // A handle in the system's group, never subscribed: it only reads the group's commits.
        var watcherConfig = KafkaConsumerConfiguration(client: KafkaClientConfiguration(bootstrapServers: common.brokers), groupID: group)
        watcherConfig.client.statisticsInterval = .zero
        let watcher = try KafkaConsumer(configuration: watcherConfig, logger: quietLogger())
        defer { watcher.close() }
        let all = (0..<partitions).map { TopicPartition(topic: topic, partition: $0) }
        let allowed = Int64(max(1, maxBacklog / max(size, 1)))

        let deadline = ContinuousClock.now + .milliseconds(Int(common.duration * 1000))
        var sentPerPartition = [Int64](repeating: 0, count: Int(partitions))
        var committed = [Int64](repeating: 0, count: Int(partitions))
        var token: UInt64 = 0
        var lastCheck = ContinuousClock.now - .seconds(1)
        let started = ContinuousClock.now
        while ContinuousClock.now < deadline {
            if rate > 0 {
                // Keep to the rate: sleep while ahead of schedule.
                let due = Double(token) / rate
                let elapsed = (ContinuousClock.now - started) / .seconds(1)
                if elapsed < due { Thread.sleep(forTimeInterval: min(0.01, due - elapsed)); continue }
            }
            if ContinuousClock.now - lastCheck > .milliseconds(checkIntervalMs) {
                lastCheck = .now
                if let offsets = try? watcher.committedOffsets(all, timeout: .seconds(2)) {
                    for (tp, offset) in offsets { committed[Int(tp.partition)] = offset ?? 0 }
                }
            }
            var sentAny = false
            for p in 0..<Int(partitions) where sentPerPartition[p] - committed[p] < allowed {
                // Never past the allowance: with 50 KB records a fixed burst alone would overrun it.
                let burst = min(64, allowed - (sentPerPartition[p] - committed[p]))
                for _ in 0..<burst {
                    try producer.send(ProducerRecord(topic: topic, partition: Int32(p), value: payload), token: token)
                    token += 1
                }
                sentPerPartition[p] += burst
                sentAny = true
            }
            if !sentAny { Thread.sleep(forTimeInterval: 0.002) }
        }
        producer.close(timeout: .seconds(10))
        print(#"{"fed": \#(produced.withLock { $0.values.reduce(0, +) })}"#)
    }
}

/// The Kafka layer's own consume-then-produce loop, with at-least-once offsets: poll a batch,
/// send each record on, and store an input offset only once every record up to it is delivered.
struct Passthrough: ParsableCommand {
    @OptionGroup var common: CommonOptions
    @Option var input: String
    @Option var output: String
    @Option var group: String
    @Option(help: "Messages per poll.") var batch: Int = 1000
    @Option(help: "A librdkafka consumer property, KEY=VALUE (repeatable).") var consumerProperty: [String] = []
    @Option(help: "A librdkafka producer property, KEY=VALUE (repeatable).") var producerProperty: [String] = []

    func run() throws {
        let logger = quietLogger()
        // Where each in-flight record came from (by token), and which input offsets are done.
        let state = Mutex((tracker: OffsetTracker(), inFlight: [UInt64: (TopicPartition, Int64, Int)]()))
        let counters = Mutex((messages: 0, bytes: 0))
        var consumerConfig = KafkaConsumerConfiguration(client: KafkaClientConfiguration(bootstrapServers: common.brokers), groupID: group)
        consumerConfig.client.statisticsInterval = .zero
        consumerConfig.autoCommitInterval = .milliseconds(100)  // the feeder paces itself on commits
        consumerConfig.client.properties = try keyValues(consumerProperty)
        let consumer = try KafkaConsumer(configuration: consumerConfig, logger: logger)
        try consumer.subscribe([input])
        var producerConfig = KafkaProducerConfiguration(client: KafkaClientConfiguration(bootstrapServers: common.brokers))
        producerConfig.client.statisticsInterval = .zero
        producerConfig.maxMessageBytes = 4_000_000
        producerConfig.client.properties = try keyValues(producerProperty)
        let producer = try KafkaProducer(configuration: producerConfig, logger: logger, onDelivery: { report in
            guard report.error == nil else { return }
            let done: (TopicPartition, Int64?, Int)? = state.withLock { state in
                guard let (source, offset, size) = state.inFlight.removeValue(forKey: report.token) else { return nil }
                return (source, state.tracker.finish(source, offset: offset), size)
            }
            guard let (source, next, size) = done else { return }
            if let next { try? consumer.storeOffset(source, nextOffset: next) }
            counters.withLock { $0.messages += 1; $0.bytes += size }
        })
        var token: UInt64 = 0
        // Time spent waiting in poll: near the run's length, the loop is waiting on the broker.
        var polls = 0
        var pollTime = Duration.zero
        // From the first message on: the rate and CPU time leave out start-up and the group join.
        var firstAt: ContinuousClock.Instant?
        var cpuAtFirst = 0.0
        let deadline = ContinuousClock.now + .milliseconds(Int(common.duration * 1000))
        while ContinuousClock.now < deadline {
            let t0 = ContinuousClock.now
            let polled = consumer.poll(maxMessages: batch, timeout: .milliseconds(100))
            // Polls after the first message only, like the rate: the wait for the group join is not
            // time the loop could have spent moving messages.
            if firstAt != nil { pollTime += ContinuousClock.now - t0 }
            polls += 1
            for case .revoked(let partitions, _) in polled.events { state.withLock { $0.tracker.forget(partitions) } }
            if !polled.messages.isEmpty, firstAt == nil {
                firstAt = .now
                cpuAtFirst = processCPUSeconds()
            }
            for message in polled.messages {
                token += 1
                state.withLock {
                    $0.tracker.track(message.topicPartition, offset: message.offset)
                    $0.inFlight[token] = (message.topicPartition, message.offset, message.value?.count ?? 0)
                }
                try producer.send(ProducerRecord(topic: output, key: message.key, value: message.value, headers: message.headers), token: token)
            }
        }
        let end = ContinuousClock.now
        let cpuSeconds = processCPUSeconds() - cpuAtFirst
        let (messages, bytes) = counters.withLock { ($0.messages, $0.bytes) }
        let seconds = firstAt.map { (end - $0) / .seconds(1) } ?? 0
        producer.close(timeout: .seconds(10))
        consumer.close()
        print(#"{"messages": \#(messages), "bytes": \#(bytes), "seconds": \#(seconds), "polls": \#(polls), "poll_seconds": \#(pollTime / .seconds(1)), "cpu_seconds": \#(cpuSeconds)}"#)
    }
}

/// User plus system CPU time of this process so far, all threads (librdkafka's included).
func processCPUSeconds() -> Double {
    var usage = rusage()
    guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// `KEY=VALUE` options (librdkafka properties, topic configs), parsed by the Kafka layer's own rule.
func keyValues(_ options: [String]) throws -> [String: String] {
    var properties: [String: String] = [:]
    for option in options {
        let (key, value) = try KafkaClientConfiguration.parseProperty(option)
        properties[key] = value
    }
    return properties
}

/// Creates topics through the CreateTopics admin API (real brokers; the embedded broker takes its
/// topics from `postclassd broker --topics`).
struct CreateTopics: ParsableCommand {
    @Option(help: "bootstrap.servers") var brokers: String
    @Option(help: "NAME:PARTITIONS,...") var topics: String
    @Option(help: "A topic config for every topic, KEY=VALUE (repeatable), e.g. retention.bytes=67108864.") var config: [String] = []

    func run() throws {
        let configs = try keyValues(config)
        let specs = try TopicSpec.parseList(topics).map { TopicSpec(name: $0.name, partitions: $0.partitions, configs: configs) }
        try KafkaAdmin.createTopics(specs, client: KafkaClientConfiguration(bootstrapServers: brokers), logger: quietLogger())
    }
}
