import Foundation
import Kafka
import TestSupport
import Testing

/// `--delivery exactly-once` through the real process on noida-db, which implements Kafka
/// transactions (a `read_committed` reader never sees an aborted transaction's records): after
/// kill -9, a member lost mid-transaction and a fenced zombie, a `read_committed` reader of the
/// output sees every valid post exactly once, and of the dead-letter topic every invalid one
/// exactly once.
@Suite(.serialized) struct ExactlyOnceTests {
    /// 3,000 records keyed `k0...`, every 20th invalid (one of each kind in turn). Returns the
    /// keys expected in the output and in the dead-letter topic.
    private func produceMixed(_ broker: NoidaBroker, total: Int = 3000) throws -> (valid: Set<String>, invalid: Set<String>) {
        var records: [(key: String, value: [UInt8])] = []
        var valid = Set<String>(), invalid = Set<String>()
        for i in 0..<total {
            let key = "k\(i)"
            if i % 20 == 7 {
                records.append((key, Posts.invalidKinds[(i / 20) % Posts.invalidKinds.count].make("p\(i)")))
                invalid.insert(key)
            } else {
                records.append((key, Posts.valid("p\(i)")))
                valid.insert(key)
            }
        }
        try broker.produce(records, topic: "posts")
        return (valid, invalid)
    }

    private static func topics() -> [TopicSpec] {
        [TopicSpec(name: "posts", partitions: 3), TopicSpec(name: "labels", partitions: 3), TopicSpec(name: "posts.dlq", partitions: 1)]
    }

    /// Exactly-once, a slow model (a few seconds of backlog), 100 ms transactions, a short
    /// transaction timeout, and the eager range assignor: noida-db 0.2.3 mostly never finishes
    /// the second round of a cooperative rebalance (bench/soak/noida_join.py).
    private static let daemonArguments = [
        "--delivery", "exactly-once", "--transaction-interval", "100", "--model", "slow:3", "--batch-size", "8", "--workers", "2",
        "--max-message-bytes", "65536", "--kafka", "session.timeout.ms=6000", "--kafka", "transaction.timeout.ms=10000",
        "--kafka", "partition.assignment.strategy=range",
    ]

    /// A member restarted after kill -9 must be a static one (group.instance.id): noida-db 0.2.3
    /// never expires a killed member's session, so a new dynamic member would wait for it forever
    /// (bench/soak/noida_rejoin.py); a static member takes its own old place.
    private static func staticMember(_ name: String) -> [String] {
        ["--kafka", "group.instance.id=\(name)"]
    }

    /// Waits until the daemon has committed at least `count` transactions (so it is mid-stream).
    private func waitForCommits(_ daemon: DaemonProcess, atLeast count: Double, timeout: Duration = .seconds(60)) throws -> Double {
        let port = try daemon.metricsPort()
        let deadline = ContinuousClock.now + timeout
        var committed = 0.0
        while ContinuousClock.now < deadline {
            committed = (try? daemon.scrape(port: port))?["postclassd_transactions_committed_total"] ?? 0
            if committed >= count { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return committed
    }

    /// Checks that every key appears exactly once: `valid` in the output, `invalid` in the
    /// dead-letter topic, read with isolation.level=read_committed. Returns how many output
    /// records a read_uncommitted reader sees beyond those: records of aborted transactions (the
    /// kills' open ones), which read_committed readers must not see.
    @discardableResult
    private func expectExactlyOnce(_ broker: NoidaBroker, valid: Set<String>, invalid: Set<String>, logs: @autoclosure () -> String) throws -> Int {
        let output = try broker.readAll("labels", expected: Int.max, idle: .seconds(4), isolation: "read_committed")
        let dlq = try broker.readAll("posts.dlq", expected: Int.max, idle: .seconds(2), isolation: "read_committed")
        let outputKeys = output.map { String(decoding: $0.key ?? [], as: UTF8.self) }
        let dlqKeys = dlq.map { String(decoding: $0.key ?? [], as: UTF8.self) }
        let missing = valid.subtracting(outputKeys), missingDLQ = invalid.subtracting(dlqKeys)
        #expect(missing.isEmpty && missingDLQ.isEmpty, "lost: \(missing.count) labelled, \(missingDLQ.count) dead letters, e.g. \(missing.sorted().prefix(5))\n\(logs())")
        #expect(outputKeys.count == valid.count, "\(outputKeys.count - Set(outputKeys).count) duplicates in the output of \(valid.count) posts")
        #expect(dlqKeys.count == invalid.count, "\(dlqKeys.count - Set(dlqKeys).count) duplicates in the dead-letter topic of \(invalid.count) records")
        #expect(Set(outputKeys).isDisjoint(with: invalid) && Set(dlqKeys).isDisjoint(with: valid))
        let uncommitted = try broker.readAll("labels", expected: Int.max, idle: .seconds(3), isolation: "read_uncommitted")
        return uncommitted.count - output.count
    }

    @Test("kill -9 mid-stream three times, restarting each time: every valid post exactly once in the output, every invalid one exactly once in the dead-letter topic")
    func killAndRestartRepeatedly() throws {
        let broker = try NoidaBroker(topics: Self.topics())
        let (valid, invalid) = try produceMixed(broker)
        let arguments = Self.daemonArguments + Self.staticMember("eos-kill") + ["--transactional-id", "eos-kill-\(UUID())"]
        var logs = ""
        for round in 0..<3 {
            let daemon = try DaemonProcess(brokers: broker.bootstrap, arguments: arguments)
            // Each kill lands after at least one commit of this run, mid-transaction.
            let committed = try waitForCommits(daemon, atLeast: 2)
            #expect(committed >= 2, "round \(round): no transaction committed; log:\n\(daemon.log.suffix(3000))")
            Thread.sleep(forTimeInterval: Double.random(in: 0.2...0.8))
            daemon.killHard()
            logs += "round \(round):\n\(daemon.log.suffix(1500))\n"
        }
        let last = try DaemonProcess(brokers: broker.bootstrap, arguments: arguments)
        _ = try broker.readAll("labels", expected: valid.count, idle: .seconds(20), timeout: .seconds(120))
        let port = try last.metricsPort()
        let samples = try last.scrape(port: port)
        #expect(last.stop() == 0, "log:\n\(last.log.suffix(3000))")
        #expect((samples["postclassd_transactions_committed_total"] ?? 0) > 0)
        #expect(samples["postclassd_transaction_commit_seconds_count"] == samples["postclassd_transactions_committed_total"])
        let aborted = try expectExactlyOnce(broker, valid: valid, invalid: invalid, logs: logs + "last:\n\(last.log.suffix(3000))")
        // The kills landed mid-transaction: output was written that read_committed readers skip.
        #expect(aborted > 0, "no output of an aborted transaction: the kills did not land mid-transaction")
        print("exactly-once, kill -9 x3: \(aborted) records of aborted transactions hidden from read_committed")
    }

    @Test("two members in one group, one killed mid-transaction and restarted: exactly once")
    func memberKilledMidTransaction() throws {
        let broker = try NoidaBroker(topics: Self.topics())
        let (valid, invalid) = try produceMixed(broker)
        // The member to kill commits every second and is killed half a second after its second
        // commit: its open transaction then holds about half a second of output, which the broker
        // has (the producer lingers 5 ms), so the kill lands mid-transaction whatever the
        // machine's speed. A slower model (10 ms a post) leaves it a backlog well past then.
        let slowCommits = Self.daemonArguments.map { $0 == "100" ? "1000" : $0 == "slow:3" ? "slow:10" : $0 }
        let argumentsA = slowCommits + Self.staticMember("eos-a") + ["--transactional-id", "eos-a-\(UUID())"]
        let first = try DaemonProcess(brokers: broker.bootstrap, arguments: argumentsA)
        let second = try DaemonProcess(brokers: broker.bootstrap, arguments: Self.daemonArguments + Self.staticMember("eos-b") + ["--transactional-id", "eos-b-\(UUID())"])
        #expect(first.waitForLog("partitions assigned", timeout: .seconds(60)) && second.waitForLog("partitions assigned", timeout: .seconds(60)))
        #expect(try waitForCommits(first, atLeast: 2) >= 2, "log:\n\(first.log.suffix(3000))")
        Thread.sleep(forTimeInterval: 0.5)
        first.killHard()
        // The restarted member fences its predecessor (same transactional id), which aborts the
        // open transaction at once, and takes its place in the group (same instance id); the
        // other member goes on throughout.
        let restarted = try DaemonProcess(brokers: broker.bootstrap, arguments: argumentsA)
        _ = try broker.readAll("labels", expected: valid.count, idle: .seconds(20), timeout: .seconds(150))
        #expect(restarted.stop() == 0, "log:\n\(restarted.log.suffix(3000))")
        #expect(second.stop() == 0, "log:\n\(second.log.suffix(3000))")
        let aborted = try expectExactlyOnce(broker, valid: valid, invalid: invalid,
                                            logs: "killed:\n\(first.log.suffix(2000))\nrestarted:\n\(restarted.log.suffix(2000))\nother:\n\(second.log.suffix(2000))")
        #expect(aborted > 0, "no output of an aborted transaction: the kill did not land mid-transaction")
        print("exactly-once, member killed: \(aborted) records of aborted transactions hidden from read_committed")
    }

    @Test("a second process with the same transactional id fences the first, which exits 2 saying fenced; the output stays exactly once")
    func zombieIsFenced() throws {
        let broker = try NoidaBroker(topics: Self.topics())
        let (valid, invalid) = try produceMixed(broker)
        let arguments = Self.daemonArguments + ["--transactional-id", "eos-zombie-\(UUID())"]
        let zombie = try DaemonProcess(brokers: broker.bootstrap, arguments: arguments)
        #expect(try waitForCommits(zombie, atLeast: 2) >= 2, "log:\n\(zombie.log.suffix(3000))")
        let successor = try DaemonProcess(brokers: broker.bootstrap, arguments: arguments)
        let status = zombie.waitForExit(timeout: .seconds(60))
        #expect(status == 2, "log:\n\(zombie.log.suffix(3000))")
        #expect(zombie.log.contains("fenced") && zombie.log.contains("Give every instance its own transactional-id"), "log:\n\(zombie.log.suffix(3000))")
        _ = try broker.readAll("labels", expected: valid.count, idle: .seconds(20), timeout: .seconds(150))
        #expect(successor.stop() == 0, "log:\n\(successor.log.suffix(3000))")
        try expectExactlyOnce(broker, valid: valid, invalid: invalid,
                              logs: "zombie:\n\(zombie.log.suffix(2000))\nsuccessor:\n\(successor.log.suffix(3000))")
    }
}

/// `--delivery exactly-once` on the embedded broker (librdkafka's mock cluster), whose request
/// errors can be injected: a transaction step the broker refuses is aborted and redone, and the
/// daemon neither stalls nor exits. (The mock cluster hands aborted records to `read_committed`
/// readers, so exactly-once itself is checked on noida-db, in ``ExactlyOnceTests``.)
@Suite(.serialized) struct TransactionFaultTests {
    @Test("EndTxn, AddOffsetsToTxn and TxnOffsetCommit refused mid-stream: the transaction is aborted and redone, later ones commit, every post is labelled, no exit",
          arguments: [(KafkaAPIKey.endTxn, KafkaErrorCode.unknownProducerID),
                      (KafkaAPIKey.addOffsetsToTxn, KafkaErrorCode.groupAuthorizationFailed),
                      (KafkaAPIKey.txnOffsetCommit, KafkaErrorCode.groupAuthorizationFailed)])
    func refusedStepIsAbortedAndRetried(apiKey: Int16, error: Int32) throws {
        let (cluster, daemon, sample) = try startMidStream(committed: 1)
        defer { withExtendedLifetime(cluster) {} }  // the broker must outlive the daemons it serves
        cluster.broker.failNextRequests(apiKey: apiKey, count: 2, with: error)
        let aborted = pollValue(timeout: .seconds(30)) { () -> Double? in
            let n = sample(#"postclassd_transactions_aborted_total{reason="error"}"#)
            return n >= 1 ? n : nil
        }
        #expect(aborted != nil, "no transaction aborted after the injected error; log:\n\(daemon.log.suffix(3000))")
        let committedAfterAbort = sample("postclassd_transactions_committed_total")
        // The mock cluster keeps no offsets committed in transactions (its TxnOffsetCommit only
        // answers) and shows aborted records to read_committed readers: progress is checked by
        // every post labelled (at least once here) and by transactions committing after the abort.
        let output = try cluster.readAll("labels", expected: total, timeout: .seconds(90))
        #expect(Set(output.compactMap { Posts.id(of: $0.value) }) == Set((0..<total).map { "p\($0)" }),
                "posts missing after the abort (a stall?); log:\n\(daemon.log.suffix(3000))")
        let later = pollValue(timeout: .seconds(30)) { sample("postclassd_transactions_committed_total") > committedAfterAbort ? true : nil }
        #expect(later != nil, "no transaction committed after the abort; log:\n\(daemon.log.suffix(3000))")
        // The metrics count committed output only: the aborted transaction's deliveries are not
        // counted, the records read again once they commit, so each post exactly once.
        let produced = #"postclassd_messages_produced_total{topic="labels"}"#
        _ = pollValue(timeout: .seconds(30)) { sample(produced) >= Double(total) ? true : nil }
        #expect(sample(produced) == Double(total), "produced_total counts aborted output; log:\n\(daemon.log.suffix(3000))")
        if apiKey == KafkaAPIKey.endTxn {
            // EndTxn comes after the commit's flush: the aborted transaction's output was delivered.
            #expect(daemon.log.contains("aborted transaction's output discarded"), "the abort discarded no delivered output")
        }
        #expect(daemon.process.isRunning, "the daemon exited; log:\n\(daemon.log.suffix(3000))")
        #expect(daemon.log.contains("aborting the transaction"))
        #expect(daemon.stop() == 0, "log:\n\(daemon.log.suffix(3000))")
    }

    @Test("the broker down for 12 s mid-stream: the commit under way waits and resumes, no exit, every post labelled")
    func brokerOutageDuringCommit() throws {
        let (cluster, daemon, sample) = try startMidStream(committed: 2)
        defer { withExtendedLifetime(cluster) {} }  // the broker must outlive the daemons it serves
        try cluster.broker.setBrokerDown(1)
        Thread.sleep(forTimeInterval: 12)
        try cluster.broker.setBrokerUp(1)
        #expect(daemon.process.isRunning, "the daemon exited during the outage; log:\n\(daemon.log.suffix(3000))")
        let before = sample("postclassd_transactions_committed_total")
        // librdkafka reconnects with a backoff that grew to reconnect.backoff.max.ms (10 s) during
        // the outage, and a transaction step begun meanwhile may time out once more: output can
        // pause for 20 s after the broker is back, so the reader waits that long for more.
        let output = try cluster.readAll("labels", expected: total, idle: .seconds(30), timeout: .seconds(120))
        #expect(Set(output.compactMap { Posts.id(of: $0.value) }) == Set((0..<total).map { "p\($0)" }),
                "posts missing after the outage; log:\n\(daemon.log.suffix(3000))")
        let later = pollValue(timeout: .seconds(30)) { sample("postclassd_transactions_committed_total") > before ? true : nil }
        #expect(later != nil, "no transaction committed after the outage; log:\n\(daemon.log.suffix(3000))")
        #expect(daemon.log.contains("the transaction's commit did not finish for a passing reason"), "the outage never met a commit")
        #expect(daemon.stop() == 0, "log:\n\(daemon.log.suffix(3000))")
    }

    /// Posts in each fault test: about 5 s of work, so the fault lands mid-stream and transactions follow it.
    private let total = 3000

    /// A mock cluster holding `total` valid posts, and an exactly-once daemon (50 ms transactions,
    /// a 3 ms model) that has committed `committed` transactions; `sample` reads one of its metrics.
    private func startMidStream(committed: Double) throws -> (DaemonTestCluster, DaemonProcess, (String) -> Double) {
        let cluster = try DaemonTestCluster.standard()
        try cluster.produce((0..<total).map { ("k\($0)", Posts.valid("p\($0)")) }, topic: "posts")
        let daemon = try DaemonProcess(brokers: cluster.bootstrap, arguments: [
            "--delivery", "exactly-once", "--transaction-interval", "50", "--model", "slow:3", "--batch-size", "8", "--workers", "2"])
        let port = try daemon.metricsPort()
        let sample = { (name: String) -> Double in (try? daemon.scrape(port: port))?[name] ?? 0 }
        let started = pollValue(timeout: .seconds(60)) { sample("postclassd_transactions_committed_total") >= committed ? true : nil }
        try #require(started != nil, "no transaction committed; log:\n\(daemon.log.suffix(3000))")
        return (cluster, daemon, sample)
    }

    /// Polls `probe` every 50 ms until it gives a value or `timeout` passes.
    private func pollValue<T>(timeout: Duration, _ probe: () -> T?) -> T? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let value = probe() { return value }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return nil
    }
}
