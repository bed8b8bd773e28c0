import Foundation
import XCTest
@testable import PostclassMetrics
#if canImport(Glibc)
import Glibc
#endif

/// A real Prometheus server (Debian `prometheus`) on loopback scrapes a MetricsServer, and a
/// query through its HTTP API returns what was recorded.
final class PrometheusScrapeTests: XCTestCase {
    /// A TCP port that was free a moment ago (bind to 0, read, close). Racy in principle; on a
    /// test machine the window is too short to matter, and a clash fails loudly, not silently.
    private func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError.system("socket", errno) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = in_addr_t(0x7f00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                guard bind(fd, pointer, length) == 0 else { return -1 }
                return getsockname(fd, pointer, &length)
            }
        }
        guard bound == 0 else { throw TestSupportError.system("bind", errno) }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    func testPrometheusServerScrapesTheConsumedCount() async throws {
        guard let prometheusPath = findTool("prometheus") else {
            return XCTFail("prometheus not found: apt-get install prometheus")
        }
        let metrics = DaemonMetrics()
        metrics.consumed(topic: "posts", count: 1234)
        metrics.buildInfo(version: "test", modelBundle: "passthrough")
        let server = try await MetricsServer.start(address: MetricsAddress(host: "127.0.0.1", port: 0),
                                                   registry: metrics.registry, health: HealthState())

        let directory = try temporaryDirectory(self)
        let config = directory.appendingPathComponent("prometheus.yml")
        try """
        global:
          scrape_interval: 1s
          scrape_timeout: 1s
        scrape_configs:
          - job_name: postclassd
            static_configs:
              - targets: ["127.0.0.1:\(server.port)"]
        """.write(to: config, atomically: true, encoding: .utf8)

        let webPort = try freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: prometheusPath)
        process.arguments = [
            "--config.file=\(config.path)",
            "--storage.tsdb.path=\(directory.appendingPathComponent("data").path)",
            "--web.listen-address=127.0.0.1:\(webPort)",
            "--log.level=warn",
        ]
        let log = directory.appendingPathComponent("prometheus.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let logHandle = try FileHandle(forWritingTo: log)
        process.standardOutput = logHandle
        process.standardError = logHandle
        try process.run()
        defer {
            process.terminate()
            process.waitUntilExit()
            try? logHandle.close()
        }

        // Prometheus needs a second or two to start, then one scrape interval.
        let query = "/api/v1/query?query=sum(postclassd_messages_consumed_total%7Bjob%3D%22postclassd%22%7D)"
        var lastAnswer = "no answer"
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(30)
        var value: String?
        while clock.now < deadline, value == nil {
            try await Task.sleep(for: .milliseconds(500))
            guard process.isRunning else { break }
            guard let response = try? rawHTTP(port: webPort, path: query) else { continue }
            lastAnswer = response.body
            value = Self.firstValue(inQueryResponse: response.body)
        }
        try await server.shutdown()
        let logText = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        XCTAssertEqual(value, "1234", "last answer: \(lastAnswer)\nprometheus log:\n\(logText)")
    }

    /// `data.result[0].value[1]` of a Prometheus instant-query response.
    private static func firstValue(inQueryResponse body: String) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
              let data = object["data"] as? [String: Any],
              let result = (data["result"] as? [[String: Any]])?.first,
              let pair = result["value"] as? [Any], pair.count == 2
        else { return nil }
        return pair[1] as? String
    }
}
