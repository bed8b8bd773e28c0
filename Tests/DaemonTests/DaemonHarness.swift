import Foundation
import TestSupport
import Kafka
import Logging
import Synchronization
import Testing

/// A `postclassd run` process under test, with its log kept in a file.
final class DaemonProcess: @unchecked Sendable {
    let process = Process()
    let logURL: URL

    init(brokers: String, arguments: [String], environment: [String: String] = [:]) throws {
        logURL = FileManager.default.temporaryDirectory.appendingPathComponent("postclassd-\(UUID()).log")
        guard FileManager.default.createFile(atPath: logURL.path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: logURL.path])
        }
        process.executableURL = try Binaries.postclassd
        // The pipeline tests use the pass-through test model unless they name one (the daemon's
        // own default is the real bundle, which these tests do not need).
        let model = arguments.contains("--model") ? [] : ["--model", "passthrough"]
        process.arguments = ["run", "--brokers", brokers, "--metrics-address", "127.0.0.1:0"] + model + arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let log = try FileHandle(forWritingTo: logURL)
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: logURL)
    }

    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    /// SIGTERM, then waits for a clean exit.
    @discardableResult
    func stop(timeout: Duration = .seconds(60)) -> Int32 {
        process.terminate()
        return waitForExit(timeout: timeout)
    }

    /// SIGKILL: no drain, no commit.
    func killHard() {
        kill(process.processIdentifier, SIGKILL)
        _ = waitForExit(timeout: .seconds(10))
    }

    func waitForExit(timeout: Duration) -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        return process.terminationStatus
    }

    /// The port of `/metrics`, from the daemon's log line announcing it.
    func metricsPort(timeout: Duration = .seconds(30)) throws -> Int {
        guard waitForLog("metrics, health and readiness at http://", timeout: timeout),
              let range = log.range(of: #"http://127\.0\.0\.1:(\d+)/metrics"#, options: .regularExpression) else {
            throw TestFailure("the daemon did not announce its metrics address:\n\(log.suffix(1500))")
        }
        let text = log[range].dropFirst("http://127.0.0.1:".count).prefix { $0.isNumber }
        guard let port = Int(text) else { throw TestFailure("bad metrics address in log") }
        return port
    }

    /// One scrape of `/metrics`, as name{labels} -> value.
    func scrape(port: Int) throws -> [String: Double] {
        parseSamples(try rawHTTP(port: port, path: "/metrics").body)
    }

    /// Waits until the log contains `text`.
    func waitForLog(_ text: String, timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if log.contains(text) { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return false
    }
}

/// A broker for daemon tests: the embedded one, hosted by the test process so it outlives the
/// daemons it serves (they are killed and restarted against it).
final class DaemonTestCluster: @unchecked Sendable {
    let broker: EmbeddedBroker
    let logger: Logger

    init(topics: [TopicSpec]) throws {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        self.logger = logger
        broker = try EmbeddedBroker(brokers: 1, topics: topics, logger: logger)
    }

    /// The daemon's default topics: posts and labels with 3 partitions, a 1-partition dead-letter
    /// topic, plus any `extra`.
    static func standard(extra: [TopicSpec] = []) throws -> DaemonTestCluster {
        try DaemonTestCluster(topics: [TopicSpec(name: "posts", partitions: 3), TopicSpec(name: "labels", partitions: 3),
                                       TopicSpec(name: "posts.dlq", partitions: 1)] + extra)
    }

    var bootstrap: String { broker.bootstrapServers }
}

/// A broker a daemon test writes to and reads from: the embedded one or a noida-db of the test's own.
protocol TestBroker {
    var bootstrap: String { get }
    var logger: Logger { get }
}

extension DaemonTestCluster: TestBroker {}
extension NoidaBroker: TestBroker {}

extension TestBroker {
    /// 3,000 posts on `posts` and a daemon slow enough (5 ms a post on 2 workers: the backlog
    /// takes ~7 s) that a signal or a fault 1.5-3.5 s in lands mid-stream. Returns once the daemon
    /// owns its partitions.
    func startMidStream(daemonArguments: [String], assignedWithin timeout: Duration = .seconds(30)) throws -> (daemon: DaemonProcess, total: Int) {
        let total = 3000
        try produce((0..<total).map { ("k\($0)", Posts.valid("p\($0)")) }, topic: "posts")
        let daemon = try DaemonProcess(brokers: bootstrap, arguments: ["--model", "slow:5", "--batch-size", "8", "--workers", "2"] + daemonArguments)
        #expect(daemon.waitForLog("partitions assigned", timeout: timeout), "log:\n\(daemon.log.suffix(2000))")
        return (daemon, total)
    }

    /// Produces records (key = id) and waits for every delivery. With `roundRobin`, record i goes
    /// to partition i % roundRobin instead of the key's partition (an even spread, so no partition
    /// passes the embedded broker's ~5 MB retention).
    func produce(_ values: [(key: String, value: [UInt8])], topic: String, roundRobin: Int? = nil) throws {
        let delivered = Atomic<Int>(0)
        let failed = Atomic<Int>(0)
        var config = KafkaProducerConfiguration(client: KafkaClientConfiguration(bootstrapServers: bootstrap))
        config.client.statisticsInterval = .zero
        config.maxMessageBytes = 20_000_000
        let producer = try KafkaProducer(configuration: config, logger: logger, onDelivery: { report in
            if report.error == nil { delivered.add(1, ordering: .relaxed) } else { failed.add(1, ordering: .relaxed) }
        })
        for (i, item) in values.enumerated() {
            try producer.send(ProducerRecord(topic: topic, partition: roundRobin.map { Int32(i % $0) }, key: Array(item.key.utf8), value: item.value),
                              token: UInt64(i))
        }
        try producer.flush(timeout: .seconds(60))
        producer.close(timeout: .seconds(5))
        guard failed.load(ordering: .relaxed) == 0, delivered.load(ordering: .relaxed) == values.count else {
            throw TestFailure("produced \(delivered.load(ordering: .relaxed)) of \(values.count), \(failed.load(ordering: .relaxed)) failed")
        }
    }

    /// Reads a topic from the beginning until `expected` records arrived or nothing new came for
    /// `idle`.
    /// Reads `topic` from the start until `expected` distinct posts (by id; records without one
    /// count each) have been seen, nothing new came for `idle`, or `timeout` passed. Counting
    /// distinct posts, not records, keeps duplicates (at-least-once after a lost partition) from
    /// ending the read before every post is there.
    /// `isolation` is the reader's `isolation.level` (librdkafka's default is read_committed).
    func readAll(_ topic: String, expected: Int, idle: Duration = .seconds(5), timeout: Duration = .seconds(120),
                 isolation: String = "read_committed") throws -> [ConsumedMessage] {
        var config = KafkaConsumerConfiguration(client: KafkaClientConfiguration(bootstrapServers: bootstrap), groupID: "reader-\(UUID())")
        config.client.statisticsInterval = .zero
        config.client.properties["isolation.level"] = isolation
        let consumer = try KafkaConsumer(configuration: config, logger: logger)
        defer { consumer.close() }
        try consumer.subscribe([topic])
        var messages: [ConsumedMessage] = []
        var distinct = Set<String>()
        let deadline = ContinuousClock.now + timeout
        var lastNew = ContinuousClock.now
        var assignedOnce = false
        while ContinuousClock.now < deadline {
            let batch = consumer.poll(maxMessages: 1000, timeout: .milliseconds(100))
            if batch.events.contains(where: { if case .assigned = $0 { return true } else { return false } }) { assignedOnce = true; lastNew = .now }
            if !batch.messages.isEmpty { lastNew = .now }
            messages += batch.messages
            for message in batch.messages { distinct.insert(Posts.id(of: message.value) ?? "\(message.topicPartition)@\(message.offset)") }
            if distinct.count >= expected && expected > 0 { break }
            if assignedOnce && ContinuousClock.now - lastNew > idle { break }
        }
        return messages
    }
}

/// Valid and invalid posts for daemon tests.
enum Posts {
    static func valid(_ id: String, text: String = "a post") -> [UInt8] {
        Array(#"{"id":"\#(id)","text":"\#(text)","lang":"en"}"#.utf8)
    }

    /// One invalid record of each kind, with the error code the daemon must give it.
    static let invalidKinds: [(code: String, make: @Sendable (String) -> [UInt8])] = [
        ("malformed_json", { id in Array(#"{"id":"\#(id)","text":"unterminated"#.utf8) }),
        ("invalid_utf8", { id in Array(#"{"id":"\#(id)","text":""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8) }),
        ("missing_field", { id in Array(#"{"id":"\#(id)","lang":"en"}"#.utf8) }),
        ("missing_field", { _ in Array(#"{"text":"no id"}"#.utf8) }),
        ("invalid_base64", { id in Array(#"{"id":"\#(id)","text":"x","image":"***not base64***"}"#.utf8) }),
        ("message_too_large", { id in Array(#"{"id":"\#(id)","text":""#.utf8) + [UInt8](repeating: 0x61, count: 70_000) + Array(#""}"#.utf8) }),
        ("invalid_field", { id in Array(#"{"id":"\#(id)","text":42}"#.utf8) }),
        ("empty_message", { _ in [] }),
    ]

    /// The `id` field of an output record.
    static func id(of value: [UInt8]?) -> String? {
        guard let value, let object = try? JSONSerialization.jsonObject(with: Data(value)) as? [String: Any] else { return nil }
        return object["id"] as? String
    }
}

/// Reads one header's text.
func header(_ name: String, of message: ConsumedMessage) -> String? {
    message.headers.first { $0.key == name }?.value.map { String(decoding: $0, as: UTF8.self) }
}

/// Polls an HTTP endpoint until it answers with `status`, or `timeout` passes.
func waitForStatus(port: Int, path: String, status: Int, timeout: Duration) -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if (try? rawHTTP(port: port, path: path).status) == status { return true }
        Thread.sleep(forTimeInterval: 0.2)
    }
    return false
}

/// A process's peak resident memory (VmHWM) in bytes, from /proc.
func peakResidentBytes(pid: Int32) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return nil }
    return kb * 1024
}
