import Foundation
import Kafka
import TestSupport
import Testing

/// What operators rely on, checked on the real process: backpressure, metrics, readiness and
/// systemd notifications.
@Suite(.serialized) struct OperationsTests {
    @Test("a model 20x slower than its input: in-flight stays within the limit, the member stays in its group, all is processed")
    func backpressureKeepsLimitsAndMembership() throws {
        let cluster = try DaemonTestCluster.standard()
        defer { withExtendedLifetime(cluster) {} }  // the broker must outlive the daemons it serves
        let total = 1000
        try cluster.produce((0..<total).map { ("k\($0)", Posts.valid("p\($0)")) }, topic: "posts")
        // 20 ms a post on 2 workers: about 100 posts/s, so the backlog takes ~10 s, longer than
        // max.poll.interval.ms (6 s): only polling on while paused keeps the member in the group.
        let daemon = try DaemonProcess(brokers: cluster.bootstrap, arguments: [
            "--model", "slow:20", "--batch-size", "10", "--workers", "2", "--max-inflight-messages", "100",
            "--kafka", "session.timeout.ms=6000", "--kafka", "max.poll.interval.ms=6000",
        ])
        let port = try daemon.metricsPort()
        var maxInFlight = 0.0
        var produced = 0.0
        let deadline = ContinuousClock.now + .seconds(90)
        while produced < Double(total) && ContinuousClock.now < deadline {
            let samples = try daemon.scrape(port: port)
            maxInFlight = max(maxInFlight, samples["postclassd_inflight_messages"] ?? 0)
            produced = samples[#"postclassd_messages_produced_total{topic="labels"}"#] ?? 0
            Thread.sleep(forTimeInterval: 0.05)
        }
        let samples = try daemon.scrape(port: port)
        let output = try cluster.readAll("labels", expected: total)
        #expect(daemon.stop() == 0)
        #expect(produced == Double(total), "only \(produced) of \(total) produced")
        #expect(maxInFlight > 0 && maxInFlight <= 100, "in-flight peaked at \(maxInFlight)")
        #expect(samples[#"postclassd_rebalances_total{kind="assigned"}"#] == 1)
        #expect(samples[#"postclassd_rebalances_total{kind="revoked"}"#] == nil && samples[#"postclassd_rebalances_total{kind="lost"}"#] == nil,
                "the member was kicked out of its group:\n\(daemon.log.suffix(2000))")
        #expect(Set(output.compactMap { Posts.id(of: $0.value) }).count == total)
    }

    @Test("/metrics after a known run: counters equal what was sent, dead-lettered and produced; promtool accepts it")
    func metricsMatchTheRun() throws {
        let cluster = try DaemonTestCluster.standard()
        defer { withExtendedLifetime(cluster) {} }  // the broker must outlive the daemons it serves
        var records: [(key: String, value: [UInt8])] = (0..<100).map { ("k\($0)", Posts.valid("p\($0)", text: $0 % 4 == 0 ? #"yeah right \u0023sarcasm \ud83d\ude43 \"sure\""# : "fine")) }
        records += (0..<10).map { ("bad\($0)", Array("{not json \($0)".utf8)) }
        try cluster.produce(records, topic: "posts")
        let daemon = try DaemonProcess(brokers: cluster.bootstrap, arguments: ["--model", "rules"])
        let port = try daemon.metricsPort()
        _ = try cluster.readAll("labels", expected: 100)
        _ = try cluster.readAll("posts.dlq", expected: 10)
        Thread.sleep(forTimeInterval: 0.5)  // the last delivery reports update the counters
        let exposition = try rawHTTP(port: port, path: "/metrics").body
        let samples = parseSamples(exposition)
        #expect(daemon.stop() == 0)
        #expect(samples[#"postclassd_messages_consumed_total{topic="posts"}"#] == 110)
        #expect(samples[#"postclassd_messages_produced_total{topic="labels"}"#] == 100)
        #expect(samples[#"postclassd_messages_produced_total{topic="posts.dlq"}"#] == 10)
        #expect(samples[#"postclassd_messages_dead_lettered_total{reason="malformed_json"}"#] == 10)
        // The sarcastic texts spell '#' as \u0023: the model saw the decoded text.
        #expect(samples[#"postclassd_labels_emitted_total{label="sarcastic",task="sarcasm"}"#] == 25)
        #expect(samples[#"postclassd_labels_emitted_total{label="not_sarcastic",task="sarcasm"}"#] == 75)
        #expect(samples[#"postclassd_build_info{model_bundle="rules@1",version="0.1.0"}"#] == 1)
        #expect((samples["postclassd_end_to_end_latency_seconds_count"] ?? 0) >= 110)
        let promtool = try Binaries.tool("promtool", package: "prometheus")
        let check = try runProgram(promtool.path, ["check", "metrics"], stdin: Data(exposition.utf8))
        #expect(check.status == 0, "promtool: \(check.output)")
    }

    @Test("a real Prometheus server scrapes the daemon: a query returns the consumed count")
    func prometheusScrapesTheDaemon() throws {
        let cluster = try DaemonTestCluster.standard()
        defer { withExtendedLifetime(cluster) {} }  // the broker must outlive the daemons it serves
        try cluster.produce((0..<321).map { ("k\($0)", Posts.valid("p\($0)")) }, topic: "posts")
        let daemon = try DaemonProcess(brokers: cluster.bootstrap, arguments: [])
        let prometheus = try PrometheusServer(targetPort: try daemon.metricsPort())
        let value = prometheus.waitForValue(of: #"sum(postclassd_messages_consumed_total{job="postclassd"})"#, toBe: "321", timeout: .seconds(60))
        #expect(daemon.stop() == 0)
        #expect(value == "321", "prometheus log:\n\(prometheus.log)")
    }

    @Test("/readyz is 503 before the group is joined and after the broker goes away, 200 in between")
    func readinessFollowsTheBroker() throws {
        let cluster = try DaemonTestCluster.standard()
        defer { withExtendedLifetime(cluster) {} }  // the broker must outlive the daemons it serves
        let daemon = try DaemonProcess(brokers: cluster.bootstrap, arguments: ["--kafka", "reconnect.backoff.max.ms=1000"])
        let port = try daemon.metricsPort()
        let first = try rawHTTP(port: port, path: "/readyz")
        #expect(first.status == 503, "ready before joining its group: \(first.body)")
        #expect(first.body.contains("group") || first.body.contains("broker"), "reason: \(first.body)")
        #expect(waitForStatus(port: port, path: "/readyz", status: 200, timeout: .seconds(30)))
        #expect(try rawHTTP(port: port, path: "/healthz").status == 200)
        cluster.broker.close()
        #expect(waitForStatus(port: port, path: "/readyz", status: 503, timeout: .seconds(30)), "still ready with no broker")
        #expect(try rawHTTP(port: port, path: "/healthz").status == 200, "the process itself is alive")
        daemon.killHard()  // no broker to drain to
    }

    @Test("systemd: READY=1, then WATCHDOG=1 pings, then STOPPING=1, in that order")
    func systemdNotifications() throws {
        let cluster = try DaemonTestCluster.standard()
        defer { withExtendedLifetime(cluster) {} }  // the broker must outlive the daemons it serves
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let receiver = try DatagramReceiver(directory: directory)
        let daemon = try DaemonProcess(brokers: cluster.bootstrap, arguments: [],
                                       environment: ["NOTIFY_SOCKET": receiver.notifySocket, "WATCHDOG_USEC": "400000"])
        var messages: [String] = []
        let deadline = ContinuousClock.now + .seconds(40)
        // Until READY=1 has come and at least three pings after it.
        func pingsAfterReady() -> Int {
            guard let ready = messages.firstIndex(where: { $0.contains("READY=1") }) else { return 0 }
            return messages[ready...].filter { $0.contains("WATCHDOG=1") }.count
        }
        while ContinuousClock.now < deadline && pingsAfterReady() < 3 {
            if let message = receiver.receive(timeout: 0.5) { messages.append(message) }
        }
        #expect(daemon.stop() == 0)
        messages += receiver.drain()
        let ready = messages.firstIndex { $0.contains("READY=1") }
        let firstPing = messages.firstIndex { $0.contains("WATCHDOG=1") }
        let stopping = messages.firstIndex { $0.contains("STOPPING=1") }
        #expect(ready != nil && firstPing != nil && stopping != nil, "got: \(messages)\n\(daemon.log.suffix(1500))")
        if let ready, let stopping {
            #expect(ready < stopping)
            #expect(messages[ready...stopping].filter { $0.contains("WATCHDOG=1") }.count >= 3, "got: \(messages)")
        }
        #expect(messages.first?.contains("EXTEND_TIMEOUT_USEC=") == true, "model loading extends the start timeout first: \(messages)")
    }
}

@Suite(.serialized) struct OffsetResetTests {
    @Test("an offset the broker trimmed away is reset per auto.offset.reset, with a log line and a counter")
    func trimmedOffsetIsResetLoudly() throws {
        let cluster = try DaemonTestCluster(topics: [TopicSpec(name: "posts", partitions: 1), TopicSpec(name: "labels", partitions: 1),
                                                     TopicSpec(name: "posts.dlq", partitions: 1)])
        defer { withExtendedLifetime(cluster) {} }  // the broker must outlive the daemons it serves
        try cluster.produce([("k0", Posts.valid("p0"))], topic: "posts")
        let first = try DaemonProcess(brokers: cluster.bootstrap, arguments: ["--group-id", "trim", "--kafka", "session.timeout.ms=6000"])
        _ = try cluster.readAll("labels", expected: 1)
        #expect(first.stop() == 0)  // commits offset 1
        // The embedded broker keeps about 5 MB per partition: 7 MB more trims offset 1 away.
        let text = String(repeating: "a", count: 70_000)
        try cluster.produce((1...100).map { ("k\($0)", Posts.valid("p\($0)", text: text)) }, topic: "posts")
        let second = try DaemonProcess(brokers: cluster.bootstrap, arguments: ["--group-id", "trim", "--kafka", "session.timeout.ms=6000"])
        let port = try second.metricsPort()
        var resets = 0.0
        let deadline = ContinuousClock.now + .seconds(60)
        while resets < 1 && ContinuousClock.now < deadline {
            resets = try second.scrape(port: port)[#"postclassd_offset_resets_total{topic="posts"}"#] ?? 0
            Thread.sleep(forTimeInterval: 0.2)
        }
        #expect(second.stop() == 0)
        #expect(resets == 1, "log:\n\(second.log.suffix(2000))")
        #expect(second.log.contains("offset out of range"))
    }
}
