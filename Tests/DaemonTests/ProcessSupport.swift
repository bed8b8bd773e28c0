import Foundation

/// Finding and running the real binaries a test drives.
enum Binaries {
    /// The `postclassd` executable built beside this test bundle.
    static var postclassd: URL {
        get throws {
            // swift test puts the test runner and the package's executables in one build folder.
            let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            var folder = runner.deletingLastPathComponent()
            for _ in 0..<4 {
                let candidate = folder.appendingPathComponent("postclassd")
                if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
                folder = folder.deletingLastPathComponent()
            }
            throw TestFailure("postclassd was not built next to the tests (\(runner.path)); run `swift build` first")
        }
    }

    /// A tool from the system's PATH, or an error naming the Debian package that has it.
    static func tool(_ name: String, package: String) throws -> URL {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let url = URL(fileURLWithPath: String(dir)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw TestFailure("\(name) is not installed: apt-get install \(package)")
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs a command to completion with optional standard input, returning its exit status and output.
@discardableResult
func runTool(_ url: URL, _ arguments: [String], input: String? = nil, timeout: Duration = .seconds(30)) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = url
    process.arguments = arguments
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    let inPipe = Pipe()
    process.standardInput = inPipe
    try process.run()
    if let input { inPipe.fileHandleForWriting.write(Data(input.utf8)) }
    try inPipe.fileHandleForWriting.close()
    let deadline = ContinuousClock.now + timeout
    while process.isRunning {
        if ContinuousClock.now > deadline {
            process.terminate()
            throw TestFailure("\(url.lastPathComponent) \(arguments.joined(separator: " ")) ran past \(timeout)")
        }
        Thread.sleep(forTimeInterval: 0.02)
    }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Waits for a file to appear and returns its contents.
func waitForFile(_ path: String, timeout: Duration) -> String? {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if let text = try? String(contentsOfFile: path, encoding: .utf8), !text.isEmpty { return text }
        Thread.sleep(forTimeInterval: 0.05)
    }
    return nil
}
