import Foundation
import Kafka
import TestSupport
import Testing

/// `postclassd check` as an operator runs it: the real binary against a real broker (the embedded
/// one, over TCP), one line per check, exit status 0 only when every check passes.
@Suite(.serialized) struct CheckCommandTests {
    /// What one `postclassd check` printed and how it exited.
    struct Outcome {
        let status: Int32
        /// Standard output: the check lines.
        let lines: [String]
        let standardError: String
        let seconds: Double

        var failures: [String] { lines.filter { $0.hasPrefix("FAIL ") } }
        func line(_ prefix: String) -> String? { lines.first { $0.hasPrefix(prefix) } }
        var all: String { lines.joined(separator: "\n") + "\n-- stderr:\n" + standardError.suffix(2000) }
    }

    /// Runs `postclassd check` with no POSTCLASSD_* variables or systemd credentials of the test
    /// runner's own, no environment file unless given, and `credentials` as its credentials folder.
    private func check(_ arguments: [String], credentials: String? = nil, envFile: String = "",
                       environment: [String: String] = [:]) throws -> Outcome {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("POSTCLASSD_") && $0.key != "CREDENTIALS_DIRECTORY" }
        for (k, v) in environment { env[k] = v }
        let process = Process()
        process.executableURL = try Binaries.postclassd
        process.arguments = ["check", "--env-file", envFile, "--credentials-directory", credentials ?? ""] + arguments
        process.environment = env
        let stdout = Pipe()
        let stderrURL = FileManager.default.temporaryDirectory.appendingPathComponent("check-\(UUID()).err")
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: stderrURL) }
        process.standardOutput = stdout
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        let start = ContinuousClock.now
        try process.run()
        let killer = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 120, execute: killer)
        let text = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        killer.cancel()
        return Outcome(status: process.terminationStatus, lines: text.split(separator: "\n").map(String.init),
                       standardError: (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "",
                       seconds: (ContinuousClock.now - start) / .seconds(1))
    }

    /// A folder with the two credential files the unit lists, empty (not used).
    private func credentialsFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("credentials-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for name in ["kafka-sasl-password", "kafka-tls-key"] {
            _ = FileManager.default.createFile(atPath: folder.appendingPathComponent(name).path, contents: nil)
        }
        return folder
    }

    private func tempFile(_ name: String, _ text: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(UUID())-\(name)")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// Records on a topic: the sum of its partitions' high watermarks.
    private func recordCount(_ topic: String, partitions: Int32, cluster: DaemonTestCluster) throws -> Int64 {
        var config = KafkaProducerConfiguration(client: KafkaClientConfiguration(bootstrapServers: cluster.bootstrap))
        config.client.statisticsInterval = .zero
        let producer = try KafkaProducer(configuration: config, logger: cluster.logger, onDelivery: { _ in })
        defer { producer.close(timeout: .seconds(5)) }
        return try (0..<partitions).reduce(0) { sum, p in
            sum + (try producer.watermarks(TopicPartition(topic: topic, partition: p), timeout: .seconds(10))).high
        }
    }

    @Test("against a working broker every check passes; only --write-test writes, one record per output topic")
    func allPass() throws {
        let cluster = try DaemonTestCluster.standard(extra: [TopicSpec(name: "posts.sarcastic", partitions: 1)])
        let credentials = try credentialsFolder()
        defer { try? FileManager.default.removeItem(at: credentials) }
        // Brokers and group come from an environment file, in systemd's syntax, as the service gets them.
        let envFile = try tempFile("postclassd.env", """
            # the service's settings
            POSTCLASSD_BROKERS=\(cluster.bootstrap)
            ;POSTCLASSD_GROUP_ID=commented-out
            POSTCLASSD_GROUP_ID="checkers"
            """)
        defer { try? FileManager.default.removeItem(at: envFile) }
        let arguments = ["--model", "passthrough", "--route", "sarcasm=sarcastic:posts.sarcastic"]

        let dry = try check(arguments, credentials: credentials.path, envFile: envFile.path)
        #expect(dry.status == 0, "\(dry.all)")
        #expect(dry.failures.isEmpty, "\(dry.all)")
        for prefix in ["OK settings: resolved from defaults, \(envFile.path), environment, flags", "OK credentials in \(credentials.path): ",
                       "OK brokers \(cluster.bootstrap): 1 broker(s)", "OK input topic posts: 3 partition(s), each with a leader",
                       "OK group checkers on posts: committed offsets read: 0 of 3", "OK output topic labels: 3 partition(s)",
                       "OK dead-letter topic posts.dlq: 1 partition(s)", "OK routed topic posts.sarcastic: ", "OK model passthrough: "] {
            #expect(dry.line(prefix) != nil, "no line starting \(prefix):\n\(dry.all)")
        }
        #expect(dry.line("OK output topic labels")?.contains("write not tested") == true, "\(dry.all)")
        #expect(try recordCount("labels", partitions: 3, cluster: cluster) == 0, "check wrote without --write-test")
        #expect(try recordCount("posts.dlq", partitions: 1, cluster: cluster) == 0, "check wrote without --write-test")

        let written = try check(arguments + ["--write-test"], credentials: credentials.path, envFile: envFile.path)
        #expect(written.status == 0, "\(written.all)")
        for prefix in ["OK output topic labels", "OK dead-letter topic posts.dlq", "OK routed topic posts.sarcastic"] {
            #expect(written.line(prefix)?.contains("wrote a test record") == true, "\(written.all)")
        }
        #expect(try recordCount("labels", partitions: 3, cluster: cluster) == 1)
        #expect(try recordCount("posts.dlq", partitions: 1, cluster: cluster) == 1)
        #expect(try recordCount("posts.sarcastic", partitions: 1, cluster: cluster) == 1)
    }

    @Test("against noida-db (a Kafka-compatible broker over TCP) the checks pass, and a missing topic is reported, not created")
    func noidaBroker() throws {
        let broker = try NoidaBroker(topics: [TopicSpec(name: "posts", partitions: 3), TopicSpec(name: "labels", partitions: 3),
                                              TopicSpec(name: "posts.dlq", partitions: 1)])
        let credentials = try credentialsFolder()
        defer { try? FileManager.default.removeItem(at: credentials) }
        let passed = try check(["--brokers", broker.bootstrap, "--model", "passthrough", "--write-test"], credentials: credentials.path)
        #expect(passed.status == 0, "\(passed.all)")
        #expect(passed.line("OK group postclassd on posts: committed offsets read: 0 of 3") != nil, "\(passed.all)")
        #expect(passed.line("OK output topic labels")?.contains("wrote a test record") == true, "\(passed.all)")

        let missing = try check(["--brokers", broker.bootstrap, "--model", "passthrough", "--input-topics", "posts,nope"],
                                credentials: credentials.path)
        #expect(missing.status == 1)
        #expect(missing.line("FAIL input topic nope: it does not exist") != nil, "\(missing.all)")
        let metadata = try KafkaAdmin.metadata(client: KafkaClientConfiguration(bootstrapServers: broker.bootstrap), logger: broker.logger)
        #expect(metadata.topics["nope"] == nil, "check created a topic on noida-db")
        #expect(metadata.topics["posts"]?.partitions.count == 3)
    }

    @Test("a broker that is down fails the broker check within the timeout, saying why, and nothing after it is claimed OK")
    func brokerDown() throws {
        // A port that was free a moment ago: nothing listens there.
        let port = try freeLoopbackPort()
        let outcome = try check(["--brokers", "127.0.0.1:\(port)", "--model", "passthrough", "--timeout", "3s"])
        #expect(outcome.status == 1, "\(outcome.all)")
        let line = try #require(outcome.line("FAIL brokers 127.0.0.1:\(port): "), "\(outcome.all)")
        #expect(line.contains("no broker answered a metadata request within 3.0 seconds"), "\(line)")
        #expect(line.contains("Connection refused"), "the client's own reason is missing: \(line)")
        #expect(line.contains("Check --brokers"), "\(line)")
        #expect(outcome.line("OK input topic") == nil && outcome.line("FAIL input topic") == nil, "\(outcome.all)")
        #expect(outcome.line("OK model passthrough") != nil, "the other checks still run: \(outcome.all)")
        #expect(outcome.seconds < 30, "took \(outcome.seconds) s")
    }

    @Test("a missing input or output topic fails with its own line, and the check does not create it")
    func missingTopics() throws {
        let cluster = try DaemonTestCluster.standard()
        let outcome = try check(["--brokers", cluster.bootstrap, "--model", "passthrough", "--input-topics", "posts,nope",
                                 "--output-topic", "gone", "--write-test"])
        #expect(outcome.status == 1, "\(outcome.all)")
        #expect(outcome.line("OK input topic posts") != nil, "\(outcome.all)")
        #expect(outcome.line("FAIL input topic nope: it does not exist")?.contains("Create it") == true, "\(outcome.all)")
        #expect(outcome.line("FAIL output topic gone: it does not exist") != nil, "\(outcome.all)")
        #expect(outcome.line("OK dead-letter topic posts.dlq")?.contains("wrote a test record") == true, "\(outcome.all)")
        #expect(outcome.failures.count == 2, "\(outcome.all)")
        let metadata = try KafkaAdmin.metadata(client: KafkaClientConfiguration(bootstrapServers: cluster.bootstrap), logger: cluster.logger)
        #expect(metadata.topics["nope"] == nil && metadata.topics["gone"] == nil, "check created a topic: \(metadata.topics.keys.sorted())")
    }

    @Test("a credential that cannot be read as a file, and one the unit needs but is missing, each fail with their reason")
    func unreadableCredential() throws {
        let cluster = try DaemonTestCluster.standard()
        let credentials = try credentialsFolder()
        defer { try? FileManager.default.removeItem(at: credentials) }
        // Tests run as root, who reads any file whatever its mode: a directory is what cannot be
        // read as a file by anyone.
        let password = credentials.appendingPathComponent("kafka-sasl-password")
        try FileManager.default.removeItem(at: password)
        try FileManager.default.createDirectory(at: password, withIntermediateDirectories: false)
        try FileManager.default.removeItem(at: credentials.appendingPathComponent("kafka-tls-key"))

        let outcome = try check(["--brokers", cluster.bootstrap, "--model", "passthrough"], credentials: credentials.path)
        #expect(outcome.status == 1, "\(outcome.all)")
        let unreadable = try #require(outcome.line("FAIL credential kafka-sasl-password: "), "\(outcome.all)")
        #expect(unreadable.contains("\(password.path) cannot be read as a file: Is a directory"), "\(unreadable)")
        let missing = try #require(outcome.line("FAIL credential kafka-tls-key: "), "\(outcome.all)")
        #expect(missing.contains("is missing, and the unit's LoadCredential= lists it"), "\(missing)")
        #expect(outcome.failures.count == 2, "only the credentials fail: \(outcome.all)")
        #expect(outcome.line("OK brokers") != nil, "\(outcome.all)")
    }

    @Test("run reads the credentials through the same code: one it cannot read is logged, not silently dropped")
    func runLogsUnreadableCredential() throws {
        let cluster = try DaemonTestCluster.standard()
        let credentials = try credentialsFolder()
        defer { try? FileManager.default.removeItem(at: credentials) }
        let key = credentials.appendingPathComponent("kafka-tls-key")
        try FileManager.default.removeItem(at: key)
        try FileManager.default.createDirectory(at: key, withIntermediateDirectories: false)
        let daemon = try DaemonProcess(brokers: cluster.bootstrap, arguments: [], environment: ["CREDENTIALS_DIRECTORY": credentials.path])
        defer { daemon.stop() }
        #expect(daemon.waitForLog("credential kafka-tls-key is ignored: \(key.path) cannot be read: Is a directory", timeout: .seconds(30)),
                "\(daemon.log.suffix(2000))")
    }

    @Test("a broken bundle fails the model check with the loader's reason; a missing one with its own")
    func brokenBundle() throws {
        let cluster = try DaemonTestCluster.standard()
        let bundle = FileManager.default.temporaryDirectory.appendingPathComponent("bundle-\(UUID())")
        try FileManager.default.createDirectory(at: bundle, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: bundle) }
        try "{ \"format\": 1, \"name\": ".write(to: bundle.appendingPathComponent("manifest.json"), atomically: true, encoding: .utf8)

        let broken = try check(["--brokers", cluster.bootstrap, "--model", bundle.path])
        #expect(broken.status == 1, "\(broken.all)")
        let line = try #require(broken.line("FAIL model \(bundle.path): "), "\(broken.all)")
        #expect(line.contains("cannot be loaded"), "\(line)")
        #expect(line.contains("manifest"), "the reason does not name the manifest: \(line)")
        #expect(line.hasSuffix("Point --model (POSTCLASSD_MODEL) at a working bundle, or repair this one"), "\(line)")
        #expect(broken.failures.count == 1, "\(broken.all)")

        let absent = try check(["--brokers", cluster.bootstrap, "--model", bundle.path + "-absent"])
        #expect(absent.status == 1)
        #expect(absent.line("FAIL model \(bundle.path)-absent: ")?.contains("is neither a test model") == true, "\(absent.all)")
    }

    @Test("invalid settings fail the settings check alone, with run's message, and the environment beats the environment file")
    func badSettings() throws {
        let outcome = try check(["--batch-size", "0"])
        #expect(outcome.status == 1)
        #expect(outcome.lines == ["FAIL settings: setting batch-size (from command line): '0' is not a whole number from 1 to 4096. Fix that setting where it came from; run would refuse to start with it"],
                "\(outcome.all)")

        let envFile = try tempFile("bad.env", "POSTCLASSD_BATCH_WAIT_MS=soon\nPOSTCLASSD_WORKERS=0\n")
        defer { try? FileManager.default.removeItem(at: envFile) }
        let layered = try check([], envFile: envFile.path, environment: ["POSTCLASSD_BATCH_WAIT_MS": "5"])
        #expect(layered.line("FAIL settings: setting workers (from POSTCLASSD_WORKERS in environment file \(envFile.path)): '0' is not") != nil,
                "\(layered.all)")
    }
}
