import Foundation
import XCTest
@testable import Model

/// Runs the real `postclassd encode-text` binary on the tiny fixture.
final class EncodeTextCommandTests: XCTestCase {
    private var binary: URL { TestPaths.productsDirectory.appendingPathComponent("postclassd") }

    private func run(_ arguments: [String], stdin: String) throws -> (status: Int32, stdout: String, stderr: String) {
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            XCTFail("\(binary.path) is not built; run `swift build` (swift test builds it too)")
            return (-1, "", "")
        }
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        input.fileHandleForWriting.write(Data(stdin.utf8))
        try input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    func testWritesOneJSONLinePerInputInOrder() throws {
        let golden = try GoldenTexts.load(TestPaths.tinyBert.appendingPathComponent("expected.json"))
        let expected = try SafeTensorsFile(path: TestPaths.tinyBert.appendingPathComponent("expected.safetensors").path)
        // Batch size 4 over 6 texts: a full batch and a partial one, each padded differently.
        let result = try run(["encode-text", "--encoder", TestPaths.tinyBert.path, "--batch-size", "4",
                              "--max-length", "\(golden.max_length)"],
                             stdin: golden.texts.joined(separator: "\n") + "\n")
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, golden.texts.count)
        struct Line: Decodable { let tokens: [Int]; let embedding: [Float] }
        for (i, line) in lines.enumerated() {
            let parsed = try JSONDecoder().decode(Line.self, from: Data(line.utf8))
            XCTAssertEqual(parsed.tokens, golden.ids[i])
            XCTAssertLessThan(maxAbsDifference(parsed.embedding, try expected.tensor("t\(i).sentence").data), 1e-4)
        }
    }

    func testMissingModelFolderSaysWhatToDo() throws {
        let dir = try temporaryDirectory(self)
        let result = try run(["encode-text", "--encoder", dir.path], stdin: "hello\n")
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("vocab.txt") && result.stderr.contains("setup-models.sh"), result.stderr)
        let bad = try run(["encode-text", "--encoder", dir.path, "--batch-size", "0"], stdin: "")
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--batch-size"), bad.stderr)
    }
}
