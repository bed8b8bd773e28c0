import Foundation
import Kafka
import Logging
import TestSupport

/// A noida-db Kafka service of the test's own (a stand-alone Kafka-compatible broker that keeps
/// its data on disk), so a test can stop and restart it (`noida-db stop kafka` / `start kafka`)
/// without disturbing the broker other tests use.
final class NoidaBroker: @unchecked Sendable {
    let bootstrap: String
    let logger: Logger
    private let dataDirectory: URL
    private let noida: URL

    /// Starts noida-db with only its Kafka service, on a free loopback port, and creates `topics`.
    init(topics: [TopicSpec]) throws {
        noida = try Binaries.tool("noida-db", package: "noida-db (pip install noida-db==0.2.3)")
        dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("postclassd-noida-\(UUID())")
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        var logger = Logger(label: "test.noida")
        logger.logLevel = .error
        self.logger = logger
        let port = try freeLoopbackPort()
        bootstrap = "127.0.0.1:\(port)"
        let started = try runTool(noida, ["up", "--only", "kafka", "--host", "127.0.0.1", "--kafka-port", "\(port)",
                                          "--data-dir", dataDirectory.path], timeout: .seconds(60))
        guard started.status == 0, waitForPort(port, timeout: .seconds(30)) else {
            throw TestFailure("noida-db did not start (status \(started.status)): \(started.output)")
        }
        try KafkaAdmin.createTopics(topics, client: KafkaClientConfiguration(bootstrapServers: bootstrap), logger: logger)
    }

    deinit {
        _ = try? runTool(noida, ["down", "--data-dir", dataDirectory.path], timeout: .seconds(60))
        try? FileManager.default.removeItem(at: dataDirectory)
    }

    /// Stops the Kafka service (its data is kept): clients see the broker go away.
    func stopKafka() throws {
        let result = try runTool(noida, ["stop", "kafka", "--data-dir", dataDirectory.path], timeout: .seconds(60))
        guard result.status == 0 else { throw TestFailure("noida-db stop kafka failed: \(result.output)") }
    }

    /// Starts the Kafka service again, on the same port, with the data it had.
    func startKafka() throws {
        let result = try runTool(noida, ["start", "kafka", "--data-dir", dataDirectory.path], timeout: .seconds(60))
        guard result.status == 0 else { throw TestFailure("noida-db start kafka failed: \(result.output)") }
    }
}

/// A loopback port nothing listens on now.
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw TestFailure("could not bind a loopback port") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Waits until something accepts TCP connections on a loopback port.
func waitForPort(_ port: Int, timeout: Duration) -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if let fd = try? connectTCP(port: port, host: "127.0.0.1") {
            close(fd)
            return true
        }
        Thread.sleep(forTimeInterval: 0.2)
    }
    return false
}
