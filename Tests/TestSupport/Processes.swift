import Foundation

/// Finding and running the real binaries a test drives.
public enum Binaries {
    /// The `postclassd` executable built beside this test bundle.
    public static var postclassd: URL {
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
    public static func tool(_ name: String, package: String) throws -> URL {
        guard let path = findTool(name) else { throw TestFailure("\(name) is not installed: apt-get install \(package)") }
        return URL(fileURLWithPath: path)
    }

}

public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Runs a command to completion with optional standard input; returns its exit status and its
/// standard output (standard error is discarded). Killed after `timeout`.
@discardableResult
public func runTool(_ url: URL, _ arguments: [String], input: String? = nil, timeout: Duration = .seconds(30)) throws -> (status: Int32, output: String) {
    try runProgram(url.path, arguments, stdin: input.map { Data($0.utf8) }, includeStandardError: false, timeout: timeout)
}

/// Waits for a file to appear and returns its contents.
public func waitForFile(_ path: String, timeout: Duration) -> String? {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if let text = try? String(contentsOfFile: path, encoding: .utf8), !text.isEmpty { return text }
        Thread.sleep(forTimeInterval: 0.05)
    }
    return nil
}
