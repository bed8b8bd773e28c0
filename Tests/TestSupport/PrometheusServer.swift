import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real Prometheus server (Debian `prometheus`) on loopback, scraping one target every second.
public final class PrometheusServer {
    public let webPort: Int
    private let process = Process()
    private let directory: URL
    private let logHandle: FileHandle

    /// Starts Prometheus scraping `127.0.0.1:targetPort` as job `postclassd`.
    public init(targetPort: Int) throws {
        guard let path = findTool("prometheus") else { throw TestFailure("prometheus is not installed: apt-get install prometheus") }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("prometheus-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let config = directory.appendingPathComponent("prometheus.yml")
        try """
        global:
          scrape_interval: 1s
          scrape_timeout: 1s
        scrape_configs:
          - job_name: postclassd
            static_configs:
              - targets: ["127.0.0.1:\(targetPort)"]
        """.write(to: config, atomically: true, encoding: .utf8)
        webPort = try freeTCPPort()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["--config.file=\(config.path)", "--storage.tsdb.path=\(directory.appendingPathComponent("data").path)",
                             "--web.listen-address=127.0.0.1:\(webPort)", "--log.level=warn"]
        let log = directory.appendingPathComponent("prometheus.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        logHandle = try FileHandle(forWritingTo: log)
        process.standardOutput = logHandle
        process.standardError = logHandle
        try process.run()
    }

    deinit {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
        try? logHandle.close()
        try? FileManager.default.removeItem(at: directory)
    }

    public var log: String {
        (try? String(contentsOf: directory.appendingPathComponent("prometheus.log"), encoding: .utf8)) ?? ""
    }

    /// Polls an instant query until it returns `expected` (as Prometheus prints it) or `timeout`
    /// passes; returns the last value seen.
    public func waitForValue(of query: String, toBe expected: String, timeout: Duration = .seconds(30)) -> String? {
        let encoded = query.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? query
        var value: String?
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, value != expected, process.isRunning {
            Thread.sleep(forTimeInterval: 0.5)
            if let response = try? rawHTTP(port: webPort, path: "/api/v1/query?query=\(encoded)") {
                value = Self.firstValue(inQueryResponse: response.body) ?? value
            }
        }
        return value
    }

    /// `data.result[0].value[1]` of a Prometheus instant-query response.
    static func firstValue(inQueryResponse body: String) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
              let data = object["data"] as? [String: Any],
              let result = (data["result"] as? [[String: Any]])?.first,
              let pair = result["value"] as? [Any], pair.count == 2
        else { return nil }
        return pair[1] as? String
    }
}

/// A TCP port on loopback that was free a moment ago (bind to 0, read it, close). Racy in
/// principle; a clash fails loudly, not silently.
public func freeTCPPort() throws -> Int {
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
