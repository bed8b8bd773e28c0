import Foundation
import Kafka
import TestSupport
import Synchronization
import Testing

/// Faults a real cluster sees every week, through the real process on a real broker: nothing is
/// lost or diverted because the cluster had a bad minute, memory stays bounded under overload,
/// and what cannot be fixed by waiting ends the daemon with the reason.
@Suite(.serialized) struct FaultTests {
    /// A daemon mid-stream on 3,000 posts whose output deliveries time out after `timeout`, so
    /// an outage longer than that makes every delivery in flight fail at least once.
    private func startMidStream(deliveryTimeout: String = "4000", extra: [String] = []) throws -> (DaemonTestCluster, DaemonProcess, Int) {
        let cluster = try DaemonTestCluster.standard()
        let (daemon, total) = try cluster.startMidStream(daemonArguments: ["--kafka", "message.timeout.ms=\(deliveryTimeout)"] + extra)
        return (cluster, daemon, total)
    }

    @Test("the broker down for 30 s mid-stream with 10 s delivery timeouts: every post labelled, none dead-lettered, not ready during, ready after")
    func brokerOutageLosesAndDivertsNothing() throws {
        let (cluster, daemon, total) = try startMidStream(deliveryTimeout: "10000")
        defer { withExtendedLifetime(cluster) {} }  // the broker must outlive the daemons it serves
        let port = try daemon.metricsPort()
        #expect(waitForStatus(port: port, path: "/readyz", status: 200, timeout: .seconds(30)))
        Thread.sleep(forTimeInterval: 1.5)
        try cluster.broker.setBrokerDown(1)
        let notReady = waitForStatus(port: port, path: "/readyz", status: 503, timeout: .seconds(10))
        Thread.sleep(forTimeInterval: 30)
        try cluster.broker.setBrokerUp(1)
        #expect(notReady, "/readyz stayed 200 with the broker down")
        let output = try cluster.readAll("labels", expected: total, idle: .seconds(20), timeout: .seconds(180))
        let dlq = try cluster.readAll("posts.dlq", expected: 0, idle: .seconds(2))
        #expect(waitForStatus(port: port, path: "/readyz", status: 200, timeout: .seconds(30)), "not ready again after the outage")
        let samples = try daemon.scrape(port: port)
        #expect(daemon.stop() == 0, "log:\n\(daemon.log.suffix(3000))")
        let ids = Set(output.compactMap { Posts.id(of: $0.value) })
        let missing = Set((0..<total).map { "p\($0)" }).subtracting(ids)
        #expect(missing.isEmpty, "\(missing.count) posts never labelled, e.g. \(missing.sorted().prefix(5))")
        #expect(dlq.isEmpty, "\(dlq.count) posts dead-lettered by an outage: \(dlq.prefix(3).map { header("error.message", of: $0) ?? "" })")
        let retries = samples.filter { $0.key.hasPrefix("postclassd_delivery_retries_total") }.values.reduce(0, +)
        #expect(retries > 0, "no delivery was retried, so the outage did not hit deliveries in flight")
    }

    @Test("noida-db's Kafka service stopped for 30 s mid-stream (default delivery timeout) and started again with its data: every post labelled, none dead-lettered")
    func noidaRestartLosesAndDivertsNothing() throws {
        let broker = try NoidaBroker(topics: [TopicSpec(name: "posts", partitions: 3), TopicSpec(name: "labels", partitions: 3),
                                              TopicSpec(name: "posts.dlq", partitions: 1)])
        let (daemon, total) = try broker.startMidStream(daemonArguments: [], assignedWithin: .seconds(60))
        let port = try daemon.metricsPort()
        Thread.sleep(forTimeInterval: 1.5)
        try broker.stopKafka()
        let notReady = waitForStatus(port: port, path: "/readyz", status: 503, timeout: .seconds(10))
        Thread.sleep(forTimeInterval: 30)
        try broker.startKafka()
        #expect(notReady, "/readyz stayed 200 with the broker stopped")
        let output = try broker.readAll("labels", expected: total, idle: .seconds(30), timeout: .seconds(180))
        let dlq = try broker.readAll("posts.dlq", expected: 0, idle: .seconds(3))
        #expect(waitForStatus(port: port, path: "/readyz", status: 200, timeout: .seconds(60)), "not ready again after the restart")
        #expect(daemon.stop() == 0, "log:\n\(daemon.log.suffix(3000))")
        let missing = Set((0..<total).map { "p\($0)" }).subtracting(output.compactMap { Posts.id(of: $0.value) })
        #expect(missing.isEmpty, "\(missing.count) posts never labelled, e.g. \(missing.sorted().prefix(5)); log:\n\(daemon.log.suffix(2000))")
        #expect(dlq.isEmpty, "\(dlq.count) posts dead-lettered by a broker restart")
    }

    @Test("SIGTERM while the broker is down: exits 0 well within TimeoutStopSec, says what is left; a restart labels everything")
    func stopDuringOutage() throws {
        // A short session lets the group hand the partitions on soon after a member that could
        // not say goodbye (the broker was down when it left).
        let (cluster, first, total) = try startMidStream(extra: ["--drain-timeout", "5s", "--kafka", "session.timeout.ms=6000"])
        defer { withExtendedLifetime(cluster) {} }  // the broker must outlive the daemons it serves
        Thread.sleep(forTimeInterval: 1.5)
        try cluster.broker.setBrokerDown(1)
        Thread.sleep(forTimeInterval: 2)
        let start = ContinuousClock.now
        let status = first.stop(timeout: .seconds(60))
        let took = ContinuousClock.now - start
        try cluster.broker.setBrokerUp(1)
        #expect(status == 0, "log:\n\(first.log.suffix(3000))")
        #expect(took < .seconds(40), "shutdown during the outage took \(took) (TimeoutStopSec is 60 s)")
        #expect(first.log.contains("will be read again on restart"), "log:\n\(first.log.suffix(2000))")
        let second = try DaemonProcess(brokers: cluster.bootstrap, arguments: ["--batch-size", "64", "--kafka", "session.timeout.ms=6000"])
        let output = try cluster.readAll("labels", expected: Int.max, idle: .seconds(20))
        #expect(second.stop() == 0)
        let missing = Set((0..<total).map { "p\($0)" }).subtracting(output.compactMap { Posts.id(of: $0.value) })
        #expect(missing.isEmpty, "\(missing.count) posts lost across a stop during an outage, e.g. \(missing.sorted().prefix(5))")
    }

    @Test("the output topic refusing writes (TOPIC_AUTHORIZATION_FAILED) past the retries: exit 2 naming the topic, nothing dead-lettered")
    func refusedOutputStopsTheDaemon() throws {
        let cluster = try DaemonTestCluster.standard()
        defer { withExtendedLifetime(cluster) {} }  // the broker must outlive the daemons it serves
        try cluster.produce((0..<20).map { ("k\($0)", Posts.valid("p\($0)")) }, topic: "posts")
        cluster.broker.failNextRequests(apiKey: KafkaAPIKey.produce, count: 10_000, with: KafkaErrorCode.topicAuthorizationFailed)
        let daemon = try DaemonProcess(brokers: cluster.bootstrap, arguments: ["--kafka", "message.timeout.ms=2000"])
        let status = daemon.waitForExit(timeout: .seconds(150))
        #expect(status == 2, "log:\n\(daemon.log.suffix(3000))")
        #expect(daemon.log.contains("refused 8 writes in a row") && daemon.log.contains("grant this client WRITE"), "log:\n\(daemon.log.suffix(3000))")
    }

    @Test("a fatal idempotent-producer error mid-stream (a sequence desynchronisation): exit 2 naming it; a restart labels every post")
    func fatalProducerErrorStopsTheDaemon() throws {
        let cluster = try DaemonTestCluster.standard()
        defer { withExtendedLifetime(cluster) {} }  // the broker must outlive the daemons it serves
        let total = 30
        try cluster.produce((0..<total).map { ("k\($0)", Posts.valid("p\($0)")) }, topic: "posts")
        // One post at a time, 300 ms apart: each produce request is alone in flight, and
        // librdkafka takes an out-of-order sequence on the first request in flight as fatal.
        let first = try DaemonProcess(brokers: cluster.bootstrap, arguments: ["--model", "slow:300", "--batch-size", "1", "--workers", "1",
                                                                                      "--kafka", "session.timeout.ms=6000"])
        let port = try first.metricsPort()
        var labelled = 0.0
        let deadline = ContinuousClock.now + .seconds(60)
        while labelled < 3 && ContinuousClock.now < deadline {
            labelled = (try? first.scrape(port: port))?[#"postclassd_messages_produced_total{topic="labels"}"#] ?? 0
            Thread.sleep(forTimeInterval: 0.05)
        }
        try #require(labelled >= 3, "the daemon labelled nothing; log:\n\(first.log.suffix(3000))")
        cluster.broker.failNextRequests(apiKey: KafkaAPIKey.produce, count: 1, with: KafkaErrorCode.outOfOrderSequenceNumber)
        let status = first.waitForExit(timeout: .seconds(60))
        #expect(status == 2, "log:\n\(first.log.suffix(3000))")
        #expect(first.log.contains("fatal Kafka producer error") && first.log.contains("OUT_OF_ORDER_SEQUENCE_NUMBER"), "log:\n\(first.log.suffix(3000))")
        let second = try DaemonProcess(brokers: cluster.bootstrap, arguments: ["--model", "passthrough"])
        let output = try cluster.readAll("labels", expected: total, idle: .seconds(30))
        #expect(second.stop() == 0)
        let missing = Set((0..<total).map { "p\($0)" }).subtracting(output.compactMap { Posts.id(of: $0.value) })
        #expect(missing.isEmpty, "\(missing.count) posts never labelled, e.g. \(missing.sorted().prefix(5)); first:\n\(first.log.suffix(4000))\nsecond:\n\(second.log.suffix(3000))")
        #expect(try cluster.readAll("posts.dlq", expected: 0, idle: .seconds(2)).isEmpty)
    }

    @Test("a fetch response over receive.message.max.bytes, which librdkafka retries forever: /readyz 503 naming the stall and the error; a restart with the limit raised labels every post; a quiet topic is no stall")
    func stalledInputIsVisible() throws {
        let broker = try NoidaBroker(topics: [TopicSpec(name: "posts", partitions: 2), TopicSpec(name: "labels", partitions: 2),
                                              TopicSpec(name: "posts.dlq", partitions: 1)])
        // 100 posts of 256 KiB: noida-db answers one fetch with all 26 MB, over the 6 MB allowed.
        let total = 100
        let text = String(repeating: "a", count: 256 * 1024 - 64)
        try broker.produce((0..<total).map { ("k\($0)", Posts.valid("p\($0)", text: text)) }, topic: "posts", roundRobin: 2)
        let limits = ["--max-inflight-bytes", "8MiB", "--max-message-bytes", "1MiB", "--stall-timeout", "2s"]
        let stalled = try DaemonProcess(brokers: broker.bootstrap, arguments: limits + ["--kafka", "receive.message.max.bytes=6000000"])
        let port = try stalled.metricsPort()
        var body = ""
        let deadline = ContinuousClock.now + .seconds(60)
        while !body.contains("input stalled") && ContinuousClock.now < deadline {
            Thread.sleep(forTimeInterval: 0.2)
            body = (try? rawHTTP(port: port, path: "/readyz")).map { "\($0.status) \($0.body)" } ?? ""
        }
        #expect(body.hasPrefix("503 "), "log:\n\(stalled.log.suffix(3000))")
        #expect(body.contains("input stalled") && body.contains("\(total) records wait") && body.contains("receive.message.max.bytes"), "\(body)")
        #expect((try stalled.scrape(port: port))["postclassd_input_stalled"] == 1)
        #expect(stalled.log.contains("input stalled"))
        #expect(stalled.stop() == 0)

        let healthy = try DaemonProcess(brokers: broker.bootstrap, arguments: limits)
        let output = try broker.readAll("labels", expected: total, idle: .seconds(5))
        let healthyPort = try healthy.metricsPort()
        Thread.sleep(forTimeInterval: 5)  // more than twice the stall timeout, with nothing to read
        #expect(waitForStatus(port: healthyPort, path: "/readyz", status: 200, timeout: .seconds(5)))
        #expect((try healthy.scrape(port: healthyPort))["postclassd_input_stalled"] == 0)
        #expect(healthy.stop() == 0)
        #expect(Set(output.compactMap { Posts.id(of: $0.value) }).count == total, "\(output.count) labelled of \(total)")
    }

    @Test("a post that forges labels, model or source keeps them under input_fields; output has no duplicate keys; input headers cannot shadow source.*")
    func forgedFieldsCannotShadowTheDaemons() throws {
        let cluster = try DaemonTestCluster.standard()
        defer { withExtendedLifetime(cluster) {} }  // the broker must outlive the daemons it serves
        let forged = #"{"id":"p1","text":"hi","labels":{"sarcasm":"forged"},"model":"forged","source":"twitter","input_fields":1,"lang":"en"}"#
        let lone = #"{"id":"p2","text":"half a character \ud800 here"}"#
        var config = KafkaProducerConfiguration(client: KafkaClientConfiguration(bootstrapServers: cluster.bootstrap))
        config.client.statisticsInterval = .zero
        let delivered = DeliveryCounter()
        let producer = try KafkaProducer(configuration: config, logger: cluster.logger, onDelivery: { _ in delivered.add() })
        try producer.send(ProducerRecord(topic: "posts", partition: 0, key: Array("k1".utf8), value: Array(forged.utf8),
                                         headers: [KafkaHeader(key: "source.topic", string: "forged"), KafkaHeader(key: "trace", string: "t1")]), token: 1)
        try producer.send(ProducerRecord(topic: "posts", partition: 0, key: Array("k2".utf8), value: Array(lone.utf8)), token: 2)
        try producer.flush(timeout: .seconds(30))
        producer.close(timeout: .seconds(5))
        let daemon = try DaemonProcess(brokers: cluster.bootstrap, arguments: ["--model", "rules"])
        let output = try cluster.readAll("labels", expected: 1)
        let dlq = try cluster.readAll("posts.dlq", expected: 1)
        #expect(daemon.stop() == 0)
        try #require(output.count == 1 && dlq.count == 1, "output \(output.count), dead letters \(dlq.count)")
        let text = String(decoding: output[0].value ?? [], as: UTF8.self)
        let keys = topLevelKeys(text)
        #expect(keys.count == Set(keys).count, "duplicate keys in \(text)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let inputFields = try #require(object["input_fields"] as? [String: Any], "\(text)")
        #expect(inputFields["model"] as? String == "forged" && inputFields["source"] as? String == "twitter" && inputFields["input_fields"] as? Int == 1)
        #expect((inputFields["labels"] as? [String: Any])?["sarcasm"] as? String == "forged")
        #expect((object["model"] as? [String: Any])?["name"] as? String == "rules", "\(text)")
        #expect((object["source"] as? [String: Any])?["topic"] as? String == "posts")
        #expect(object["lang"] as? String == "en")
        #expect(header("source.topic", of: output[0]) == "posts")
        #expect(header("input.source.topic", of: output[0]) == "forged" && header("trace", of: output[0]) == "t1")
        #expect(output[0].headers.filter { $0.key == "source.topic" }.count == 1)
        #expect(header("error.code", of: dlq[0]) == "malformed_json")
        #expect(header("error.message", of: dlq[0])?.contains("unpaired surrogate") == true, "\(header("error.message", of: dlq[0]) ?? "")")
    }

    @Test("a 75 MB backlog of 256 KiB posts with max-inflight-bytes 8 MiB: input pauses on bytes, peak memory stays bounded")
    func byteLimitBoundsMemory() throws {
        // noida-db keeps the whole backlog and serves it faster than the model takes it (the
        // embedded broker trims at ~5 MB per partition and fetches 256 KiB records slowly).
        let cluster = try NoidaBroker(topics: [TopicSpec(name: "big", partitions: 6), TopicSpec(name: "labels", partitions: 3),
                                               TopicSpec(name: "posts.dlq", partitions: 1)])
        let daemon = try DaemonProcess(brokers: cluster.bootstrap, arguments: [
            "--input-topics", "big", "--model", "slow:20", "--workers", "2", "--batch-size", "4",
            "--max-inflight-bytes", "8MiB", "--max-message-bytes", "1MiB", "--log-level", "debug",
        ])
        let port = try daemon.metricsPort()
        #expect(daemon.waitForLog("partitions assigned", timeout: .seconds(30)))
        Thread.sleep(forTimeInterval: 1)
        let idle = try #require(peakResidentBytes(pid: daemon.process.processIdentifier))
        let total = 300
        let text = String(repeating: "a", count: 256 * 1024 - 64)
        try cluster.produce((0..<total).map { ("k\($0)", Posts.valid("p\($0)", text: text)) }, topic: "big", roundRobin: 6)
        var produced = 0.0
        var maxInFlightBytes = 0.0
        var gaps = 0.0
        let deadline = ContinuousClock.now + .seconds(120)
        while produced < Double(total) && ContinuousClock.now < deadline {
            let samples = try daemon.scrape(port: port)
            produced = samples[#"postclassd_messages_produced_total{topic="labels"}"#] ?? 0
            maxInFlightBytes = max(maxInFlightBytes, samples["postclassd_inflight_bytes"] ?? 0)
            gaps = samples["postclassd_offset_gaps_total"] ?? 0
            Thread.sleep(forTimeInterval: 0.1)
        }
        let peak = try #require(peakResidentBytes(pid: daemon.process.processIdentifier))
        #expect(daemon.stop() == 0)
        #expect(produced == Double(total), "only \(produced) of \(total) labelled; offset gaps \(gaps); log:\n\(daemon.log.suffix(3000))")
        #expect(gaps == 0, "the consumer skipped \(gaps) offsets")
        // Input paused and resumed many times over the backlog (librdkafka 2.0.2 can skip records
        // around a pause, #4208): every id must be there, not just as many records.
        let ids = Set(try cluster.readAll("labels", expected: total, idle: .seconds(5)).compactMap { Posts.id(of: $0.value) })
        let missing = Set((0..<total).map { "p\($0)" }).subtracting(ids)
        #expect(missing.isEmpty, "\(missing.count) posts never labelled across the pauses, e.g. \(missing.sorted().prefix(5))")
        // 32 posts fill 8 MiB to within a post, so admission stops short of the limit: input must
        // pause on the records waiting for room, not on the load alone (which never reaches it).
        #expect(daemon.log.contains("in-flight limit reached: input paused"), "input never paused")
        // Records that do not fit are let go and read again, so in flight stays near the limit
        // (one poll past it at most).
        #expect(maxInFlightBytes <= Double(12 << 20), "in-flight bytes (admitted and waiting) peaked at \(Int(maxInFlightBytes) >> 20) MiB")
        // A sanity bound on the whole process; the in-flight check above is what proves the byte
        // limit, because here RSS is dominated by what the broker sends. The daemon's own share:
        // each in-flight post exists up to three times (the consumed record, its output, the
        // producer's copy), 3 x 8 MiB. librdkafka's share: noida-db answers one fetch with all it
        // has (here the whole 75 MB backlog) whatever fetch.max.bytes says, and librdkafka holds a
        // response until the last record cut from it is freed. After a resume it fetches again
        // from the paused offset while a record of the old response may still be in flight, so
        // two responses can be alive at once (a slower CI machine grew by 141 MiB where this one
        // grows by ~101). Plus 40 MiB of margin for allocator slack.
        let growth = peak - idle
        print("byte limit: idle RSS \(idle >> 20) MiB, peak \(peak >> 20) MiB, growth \(growth >> 20) MiB")
        #expect(growth < (24 + 2 * 75 + 40) << 20, "peak RSS grew by \(growth >> 20) MiB over an idle \(idle >> 20) MiB")
    }

    /// The top-level keys of a JSON object, in order, with duplicates kept (JSONSerialization
    /// would silently keep one).
    private func topLevelKeys(_ text: String) -> [String] {
        var keys: [String] = []
        var depth = 0, inString = false, escaped = false, current = "", expectingKey = false
        for ch in text {
            if inString {
                if escaped { escaped = false; current.append(ch); continue }
                if ch == "\\" { escaped = true; current.append(ch); continue }
                if ch == "\"" { inString = false; if expectingKey && depth == 1 { keys.append(current) }; continue }
                current.append(ch)
                continue
            }
            switch ch {
            case "\"": inString = true; current = ""
            case "{", "[": depth += 1; expectingKey = ch == "{" && depth == 1
            case "}", "]": depth -= 1
            case ",": expectingKey = depth == 1
            case ":": expectingKey = false
            default: break
            }
        }
        return keys
    }
}

/// Counts delivery reports from the producer's thread.
final class DeliveryCounter: Sendable {
    private let count = Mutex(0)
    func add() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
