import Foundation
import XCTest
@testable import PostclassMetrics

/// A real Prometheus server (Debian `prometheus`) on loopback scrapes a MetricsServer, and a
/// query through its HTTP API returns what was recorded.
final class PrometheusScrapeTests: XCTestCase {
    func testPrometheusServerScrapesTheConsumedCount() async throws {
        let metrics = DaemonMetrics()
        metrics.consumed(topic: "posts", count: 1234)
        metrics.buildInfo(version: "test", modelBundle: "passthrough")
        let server = try await MetricsServer.start(address: MetricsAddress(host: "127.0.0.1", port: 0),
                                                   registry: metrics.registry, health: HealthState())
        let prometheus = try PrometheusServer(targetPort: server.port)
        let value = prometheus.waitForValue(of: #"sum(postclassd_messages_consumed_total{job="postclassd"})"#, toBe: "1234")
        try await server.shutdown()
        XCTAssertEqual(value, "1234", "prometheus log:\n\(prometheus.log)")
    }
}
