import Foundation
import TestSupport
import Testing

/// `postclassd broker` as a user runs it, driven by kcat.
@Suite struct BrokerCommandTests {
    @Test("postclassd broker serves kcat producers and group consumers, and cleans up on SIGTERM")
    func brokerServesKcat() throws {
        let kcat = try Binaries.tool("kcat", package: "kcat")
        let bootstrapFile = FileManager.default.temporaryDirectory.appendingPathComponent("bootstrap-\(UUID())").path
        let broker = Process()
        broker.executableURL = try Binaries.postclassd
        broker.arguments = ["broker", "--topics", "posts:3,labels:3,posts.dlq:1", "--bootstrap-file", bootstrapFile]
        let stdout = Pipe()
        broker.standardOutput = stdout
        broker.standardError = FileHandle.nullDevice
        try broker.run()
        defer { if broker.isRunning { broker.interrupt() } }

        let bootstrap = try #require(waitForFile(bootstrapFile, timeout: .seconds(10)), "no bootstrap file")
        #expect(bootstrap.hasPrefix("127.0.0.1:"))

        let lines = (0..<30).map { "key\($0):value\($0)" }.joined(separator: "\n") + "\n"
        let produced = try runTool(kcat, ["-b", bootstrap, "-t", "posts", "-P", "-K:"], input: lines)
        #expect(produced.status == 0)

        let metadata = try runTool(kcat, ["-b", bootstrap, "-L"])
        #expect(metadata.output.contains("topic \"posts\" with 3 partitions"))
        #expect(metadata.output.contains("topic \"posts.dlq\" with 1 partitions"))

        // A balanced (group) consumer: needs the group coordinator, join and offset commit.
        let consumed = try runTool(kcat, ["-b", bootstrap, "-G", "kcat-group", "-o", "beginning", "-c", "30",
                                          "-f", "%k=%s\n", "posts"], timeout: .seconds(60))
        #expect(consumed.status == 0)
        let got = Set(consumed.output.split(separator: "\n").map(String.init))
        #expect(got == Set((0..<30).map { "key\($0)=value\($0)" }))

        broker.terminate()  // SIGTERM
        broker.waitUntilExit()
        #expect(broker.terminationStatus == 0)
        #expect(!FileManager.default.fileExists(atPath: bootstrapFile), "the bootstrap file was not removed")
        let printed = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(printed.trimmingCharacters(in: .whitespacesAndNewlines) == bootstrap)
    }
}
