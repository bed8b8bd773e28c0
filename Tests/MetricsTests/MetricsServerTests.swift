import Foundation
import NIOPosix
import XCTest
@testable import PostclassMetrics

final class MetricsServerTests: XCTestCase {
    private func startServer(metrics: DaemonMetrics = DaemonMetrics(),
                             health: HealthState = HealthState()) async throws -> MetricsServer {
        let server = try await MetricsServer.start(
            address: MetricsAddress(host: "127.0.0.1", port: 0),
            registry: metrics.registry, health: health)
        XCTAssertNotEqual(server.port, 0, "port 0 must be replaced by the bound port")
        addTeardownBlock { try? await server.shutdown() }
        return server
    }

    /// Records a known run, scrapes it over HTTP, checks every counter, and lints with promtool.
    func testScrapeEqualsRecordedValuesAndPassesPromtool() async throws {
        let metrics = DaemonMetrics()
        for _ in 0..<7 { metrics.consumed(topic: "posts") }
        metrics.consumed(topic: "posts-eu", count: 3)
        metrics.produced(topic: "posts-labelled", count: 8)
        metrics.deadLettered(reason: "malformed_json")
        metrics.deadLettered(reason: "malformed_json")
        metrics.deadLettered(reason: "bad_base64")
        metrics.labelEmitted(task: "nsfw", label: "safe", count: 6)
        metrics.labelEmitted(task: "nsfw", label: "unsafe", count: 2)
        metrics.dropped(task: "spam", label: "spam")
        metrics.routed(task: "nsfw", label: "unsafe", topic: "review")
        metrics.rebalance(kind: .assigned)
        metrics.rebalance(kind: .revoked)
        metrics.kafkaError(kind: "all_brokers_down")
        metrics.offsetReset(topic: "posts")
        metrics.observeBatch(size: 8, waitSeconds: 0.02)
        metrics.observeBatch(size: 2, waitSeconds: 0.05)
        for stage in ["decode", "tokenize", "text_encoder", "image_encoder", "heads", "classify"] { metrics.observeStage(stage, seconds: 0.004) }
        metrics.observeEndToEnd(seconds: 0.3)
        metrics.observeEndToEnd(seconds: 12)
        metrics.setInFlight(messages: 42, bytes: 43_008)
        metrics.setConsumerLag(topic: "posts", partition: 0, lag: 120)
        metrics.setConsumerLag(topic: "posts", partition: 1, lag: 0)
        metrics.setWorkerBusyRatio(0.75)
        metrics.setLastProcessedTimestamp(1_763_900_000.5)
        metrics.buildInfo(version: "0.1.0", modelBundle: "passthrough")

        let server = try await startServer(metrics: metrics)
        let response = try rawHTTP(port: server.port, path: "/metrics")
        try await server.shutdown()

        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        let samples = parseSamples(response.body)
        let expected: [String: Double] = [
            #"postclassd_messages_consumed_total{topic="posts"}"#: 7,
            #"postclassd_messages_consumed_total{topic="posts-eu"}"#: 3,
            #"postclassd_messages_produced_total{topic="posts-labelled"}"#: 8,
            #"postclassd_messages_dead_lettered_total{reason="malformed_json"}"#: 2,
            #"postclassd_messages_dead_lettered_total{reason="bad_base64"}"#: 1,
            #"postclassd_labels_emitted_total{label="safe",task="nsfw"}"#: 6,
            #"postclassd_labels_emitted_total{label="unsafe",task="nsfw"}"#: 2,
            #"postclassd_messages_dropped_total{label="spam",task="spam"}"#: 1,
            #"postclassd_messages_routed_total{label="unsafe",task="nsfw",topic="review"}"#: 1,
            #"postclassd_rebalances_total{kind="assigned"}"#: 1,
            #"postclassd_rebalances_total{kind="revoked"}"#: 1,
            #"postclassd_kafka_errors_total{kind="all_brokers_down"}"#: 1,
            #"postclassd_offset_resets_total{topic="posts"}"#: 1,
            "postclassd_batch_size_count": 2,
            "postclassd_batch_size_sum": 10,
            "postclassd_end_to_end_latency_seconds_count": 2,
            #"postclassd_stage_duration_seconds_count{stage="text_encoder"}"#: 1,
            #"postclassd_stage_duration_seconds_count{stage="classify"}"#: 1,
            "postclassd_inflight_messages": 42,
            "postclassd_inflight_bytes": 43_008,
            #"postclassd_consumer_lag_messages{partition="0",topic="posts"}"#: 120,
            #"postclassd_consumer_lag_messages{partition="1",topic="posts"}"#: 0,
            "postclassd_worker_busy_ratio": 0.75,
            "postclassd_last_processed_timestamp_seconds": 1_763_900_000.5,
            #"postclassd_build_info{model_bundle="passthrough",version="0.1.0"}"#: 1,
        ]
        for (series, value) in expected {
            XCTAssertEqual(samples[series], value, "\(series) in scrape:\n\(response.body)")
        }
        XCTAssertEqual(samples["postclassd_end_to_end_latency_seconds_sum"] ?? 0, 12.3, accuracy: 1e-9)

        guard let promtool = findTool("promtool") else {
            XCTFail("promtool not found: apt-get install prometheus")
            return
        }
        let lint = try runProgram(promtool, ["check", "metrics"], stdin: Data(response.body.utf8))
        XCTAssertEqual(lint.status, 0, "promtool check metrics:\n\(lint.output)\nscrape:\n\(response.body)")
        XCTAssertEqual(lint.output.trimmingCharacters(in: .whitespacesAndNewlines), "",
                       "promtool reported lint problems")
    }

    func testUnknownPathIs404AndNonGetIs405() async throws {
        let server = try await startServer()

        let missing = try rawHTTP(port: server.port, path: "/nope")
        XCTAssertEqual(missing.status, 404)
        XCTAssertTrue(missing.body.contains("/metrics"), missing.body)

        for method in ["POST", "PUT", "DELETE"] {
            let response = try rawHTTP(port: server.port, method: method, path: "/metrics")
            XCTAssertEqual(response.status, 405, method)
            XCTAssertEqual(response.headers["allow"], "GET")
        }
        let withQuery = try rawHTTP(port: server.port, path: "/healthz?verbose=1")
        XCTAssertEqual(withQuery.status, 200)
    }

    func testHealthzFailsWhenHeartbeatsStop() async throws {
        let health = HealthState(stallThreshold: .seconds(1))
        let server = try await startServer(health: health)

        for _ in 0..<5 {
            health.heartbeat()
            let response = try rawHTTP(port: server.port, path: "/healthz")
            XCTAssertEqual(response.status, 200, response.body)
            try await Task.sleep(for: .milliseconds(50))
        }
        try await Task.sleep(for: .milliseconds(1500))
        let stalled = try rawHTTP(port: server.port, path: "/healthz")
        XCTAssertEqual(stalled.status, 503)
        XCTAssertTrue(stalled.body.hasPrefix("unhealthy: poll loop stalled"), stalled.body)
        XCTAssertEqual(stalled.body.split(separator: "\n").count, 1, "one line: \(stalled.body)")

        health.heartbeat()
        XCTAssertEqual(try rawHTTP(port: server.port, path: "/healthz").status, 200)
    }

    func testReadyzNeedsEveryCondition() async throws {
        let health = HealthState()
        let server = try await startServer(health: health)

        var response = try rawHTTP(port: server.port, path: "/readyz")
        XCTAssertEqual(response.status, 503)
        XCTAssertEqual(response.body, "not ready: consumer has not joined its group; "
            + "producer has not reached a broker; model is not loaded\n")

        health.set(.modelLoaded, ready: true, reason: "")
        health.set(.producerConnected, ready: true, reason: "")
        health.set(.groupJoined, ready: false,
                   reason: "consumer has not joined group postclassd (waiting for partition assignment)")
        response = try rawHTTP(port: server.port, path: "/readyz")
        XCTAssertEqual(response.status, 503)
        XCTAssertEqual(response.body,
                       "not ready: consumer has not joined group postclassd (waiting for partition assignment)\n")

        health.set(.groupJoined, ready: true, reason: "")
        response = try rawHTTP(port: server.port, path: "/readyz")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.body, "ready\n")

        health.set(.producerConnected, ready: false, reason: "producer lost all brokers\n(localhost:9092 down)")
        response = try rawHTTP(port: server.port, path: "/readyz")
        XCTAssertEqual(response.status, 503)
        XCTAssertEqual(response.body, "not ready: producer lost all brokers (localhost:9092 down)\n")
    }

    /// Prometheus keeps its scrape connection open: two requests on one socket both get answers.
    func testKeepAliveServesSeveralRequestsOnOneConnection() async throws {
        let server = try await startServer()
        let fd = try connectTCP(port: server.port)
        defer { close(fd) }
        for path in ["/healthz", "/metrics"] {
            try sendAll(fd, "GET \(path) HTTP/1.1\r\nHost: test\r\n\r\n")
            let (text, closed) = try receive(fd) { text in
                // Complete once the body announced by Content-Length has arrived.
                guard let split = text.range(of: "\r\n\r\n"),
                      let lengthLine = text[..<split.lowerBound].split(separator: "\r\n")
                        .first(where: { $0.lowercased().hasPrefix("content-length:") }),
                      let length = Int(lengthLine.split(separator: ":")[1].trimmingCharacters(in: .whitespaces))
                else { return false }
                return text.utf8.count - text[..<split.upperBound].utf8.count >= length
            }
            XCTAssertFalse(closed, "server closed a keep-alive connection after \(path)")
            XCTAssertTrue(text.hasPrefix("HTTP/1.1 200"), text)
        }
    }

    func testIdleConnectionsAreClosed() async throws {
        let server = try await MetricsServer.start(
            address: MetricsAddress(host: "127.0.0.1", port: 0), registry: DaemonMetrics().registry,
            health: HealthState(), idleTimeout: .milliseconds(200))
        addTeardownBlock { try? await server.shutdown() }
        let fd = try connectTCP(port: server.port)
        defer { close(fd) }
        let clock = ContinuousClock()
        let start = clock.now
        let (_, closed) = try receive(fd)  // blocks until the server hangs up (5 s socket timeout)
        XCTAssertTrue(closed)
        XCTAssertLessThan(clock.now - start, .seconds(3))
    }

    func testConnectionsBeyondTheLimitAreClosedAndRoomReturns() async throws {
        let server = try await MetricsServer.start(
            address: MetricsAddress(host: "127.0.0.1", port: 0), registry: DaemonMetrics().registry,
            health: HealthState(), maxConnections: 4)
        addTeardownBlock { try? await server.shutdown() }
        var held = try (0..<4).map { _ in try connectTCP(port: server.port) }
        defer { for fd in held { close(fd) } }
        // Each held connection answers, so the server has accepted all four.
        for fd in held {
            try sendAll(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            XCTAssertTrue(try receive(fd) { $0.hasSuffix("\n") && $0.contains("ok") }.text.hasPrefix("HTTP/1.1 200"))
        }
        let extra = try connectTCP(port: server.port)
        defer { close(extra) }
        try? sendAll(extra, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        let refused = (try? receive(extra)) ?? (text: "", closed: true)
        XCTAssertTrue(refused.closed && refused.text.isEmpty, "a fifth connection was served: \(refused.text)")

        close(held.removeFirst())
        var answered = ""
        for _ in 0..<50 where !answered.hasPrefix("HTTP/1.1 200") {
            try await Task.sleep(for: .milliseconds(50))
            answered = (try? rawHTTP(port: server.port, path: "/healthz"))?.status == 200 ? "HTTP/1.1 200" : ""
        }
        XCTAssertEqual(answered, "HTTP/1.1 200", "no room after a held connection closed")
    }

    func testSecondServerOnSamePortFailsWithActionableError() async throws {
        let first = try await startServer()
        do {
            let second = try await MetricsServer.start(
                address: MetricsAddress(host: "127.0.0.1", port: first.port),
                registry: DaemonMetrics().registry, health: HealthState())
            try? await second.shutdown()
            XCTFail("binding a port in use must fail")
        } catch {
            guard case .addressInUse = error else { return XCTFail("unexpected error \(error)") }
            XCTAssertEqual(error.description,
                           "cannot bind metrics address 127.0.0.1:\(first.port): address in use; "
                               + "set --metrics-address to a free port")
        }
    }

    func testShutdownClosesTheSocketAndLeavesAPassedGroupRunning() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await MetricsServer.start(
            address: MetricsAddress(host: "127.0.0.1", port: 0),
            registry: DaemonMetrics().registry, health: HealthState(), group: group)
        XCTAssertEqual(try rawHTTP(port: server.port, path: "/healthz").status, 200)
        // A keep-alive connection, as a scraper holds one: shutdown must close it too.
        let keepAlive = try connectTCP(port: server.port)
        defer { close(keepAlive) }
        try sendAll(keepAlive, "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        _ = try receive(keepAlive) { $0.hasSuffix("\n") && $0.contains("ok: poll loop alive") }

        try await server.shutdown()
        try await server.shutdown()  // idempotent
        XCTAssertTrue(try receive(keepAlive).closed, "shutdown must close open connections")
        XCTAssertThrowsError(try rawHTTP(port: server.port, path: "/healthz"), "socket must be closed")
        // The group is the caller's: it still runs work after the server is gone.
        let value = try await group.next().submit { 42 }.get()
        XCTAssertEqual(value, 42)
        try await group.shutdownGracefully()
    }

    func testServesOnIPv6LoopbackWhenAvailable() async throws {
        let server: MetricsServer
        do {
            server = try await MetricsServer.start(address: MetricsAddress(parsing: "[::1]:0"),
                                                   registry: DaemonMetrics().registry, health: HealthState())
        } catch {
            throw XCTSkip("no IPv6 loopback here: \(error)")
        }
        addTeardownBlock { try? await server.shutdown() }
        XCTAssertEqual(server.boundAddress.description, "[::1]:\(server.port)")
        XCTAssertEqual(try rawHTTP(port: server.port, path: "/metrics", host: "::1").status, 200)
    }
}
