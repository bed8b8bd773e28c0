import Foundation
import XCTest
@testable import Model

/// Runs the real `postclassd encode-image` binary on good and corrupt JPEGs.
final class EncodeImageCommandTests: XCTestCase {
    private struct Line: Decodable {
        struct Class: Decodable { let `class`: Int; let name: String; let probability: Float }
        struct Failure: Decodable { let code: String; let message: String }
        let file: String
        let width: Int?
        let height: Int?
        let top5: [Class]?
        let pooled: [Float]?
        let error: Failure?
        let dct_scale: Int?
    }

    private let images = TestPaths.fixtures.appendingPathComponent("images")

    private func run(_ arguments: [String]) throws -> (status: Int32, lines: [Line], stderr: String) {
        let binary = TestPaths.productsDirectory.appendingPathComponent("postclassd")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            XCTFail("\(binary.path) is not built; run `swift build` (swift test builds it too)")
            return (-1, [], "")
        }
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let lines = try out.split(separator: UInt8(ascii: "\n")).map { try JSONDecoder().decode(Line.self, from: Data($0)) }
        return (process.terminationStatus, lines, String(decoding: err, as: UTF8.self))
    }

    /// The first half of a baseline JPEG: the decoder reports truncation.
    private func corruptJPEG() throws -> URL {
        let full = try Data(contentsOf: images.appendingPathComponent("astronaut_baseline.jpg"))
        let url = try temporaryDirectory(self).appendingPathComponent("half.jpg")
        try full.prefix(full.count / 2).write(to: url)
        return url
    }

    func testGoodAndCorruptFilesWithTinyEncoder() throws {
        let good = images.appendingPathComponent("coffee_progressive.jpg").path
        let bad = try corruptJPEG().path
        // Batch size 2 over 3 files: the corrupt one shares a batch with a good one.
        let result = try run(["encode-image", "--encoder", TestPaths.tinyEfficientNet.path, "--batch-size", "2", good, bad, good])
        XCTAssertEqual(result.status, 1, "a failed file must make the exit status non-zero; \(result.stderr)")
        XCTAssertEqual(result.lines.map(\.file), [good, bad, good])
        let first = result.lines[0], second = result.lines[1], third = result.lines[2]
        XCTAssertNil(first.error)
        // 240x160, decoded at 1/4 scale: the tiny encoder's 36-pixel shortest side still fits.
        XCTAssertEqual(first.width, 60)
        XCTAssertEqual(first.height, 40)
        XCTAssertEqual(first.dct_scale, 4)
        XCTAssertEqual(first.pooled?.count, 36)
        XCTAssertEqual(first.top5?.count, 5)
        XCTAssertEqual(first.top5?.first?.name, "class \(first.top5?.first?.class ?? -1), tiny")
        let probabilities = first.top5?.map(\.probability) ?? []
        XCTAssertEqual(probabilities, probabilities.sorted(by: >))
        XCTAssertEqual(second.error?.code, "jpeg_truncated")
        XCTAssertNil(second.pooled)
        // The same file alone and next to a failure: the same vector.
        XCTAssertEqual(first.pooled, third.pooled)
    }

    func testAllGoodExitsZeroAndRealEncoderFindsEspresso() throws {
        try requireGeneratedFiles(TestPaths.efficientNetLite0.appendingPathComponent("model.safetensors"))
        let coffee = images.appendingPathComponent("coffee_progressive.jpg").path
        let result = try run(["encode-image", "--encoder", TestPaths.efficientNetLite0.path, coffee])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.lines.count, 1)
        XCTAssertEqual(result.lines.first?.top5?.first?.name, "espresso")
        XCTAssertGreaterThan(result.lines.first?.top5?.first?.probability ?? 0, 0.5)
        XCTAssertEqual(result.lines.first?.pooled?.count, 1280)
    }

    /// `--regions-out`: every file's region grid in argument order, zeros and decoded 0 for a
    /// failure; for EfficientNet the pooled vector is the mean of the regions, so the two agree.
    func testRegionsOutWritesEveryFilesGridInOrder() throws {
        let good = images.appendingPathComponent("coffee_progressive.jpg").path
        let other = images.appendingPathComponent("astronaut_baseline.jpg").path
        let bad = try corruptJPEG().path
        let out = try temporaryDirectory(self).appendingPathComponent("regions.safetensors")
        let result = try run(["encode-image", "--encoder", TestPaths.tinyEfficientNet.path, "--batch-size", "2",
                              "--regions-out", out.path, good, bad, other, good])
        XCTAssertEqual(result.status, 1, "the corrupt file still fails the run; \(result.stderr)")
        let file = try SafeTensorsFile(path: out.path)
        let regions = try file.tensor("regions"), decoded = try file.tensor("decoded")
        XCTAssertEqual(decoded.data, [1, 0, 1, 1])
        XCTAssertEqual(regions.rank, 3)
        XCTAssertEqual(regions.shape[0], 4)
        let k = regions.shape[1], d = regions.shape[2], size = k * d
        XCTAssertEqual(d, 36, "the tiny encoder's region width")
        let grid = { (i: Int) in Array(regions.data[(i * size)..<((i + 1) * size)]) }
        XCTAssertEqual(grid(1), [Float](repeating: 0, count: size))
        XCTAssertEqual(grid(0), grid(3), "the same file in two batches")
        for (i, line) in result.lines.enumerated() where line.error == nil {
            let mean = (0..<d).map { c in (0..<k).reduce(Float(0)) { $0 + grid(i)[$1 * d + c] } / Float(k) }
            XCTAssertLessThan(maxAbsDifference(mean, line.pooled ?? []), 1e-5, "file \(i): pooled is the mean of its regions")
        }
    }

    func testUnknownKindSaysSo() throws {
        let dir = try temporaryDirectory(self)
        try Data(#"{"kind": "resnet"}"#.utf8).write(to: dir.appendingPathComponent("config.json"))
        let unknown = try run(["encode-image", "--encoder", dir.path, images.appendingPathComponent("tiny_1x1.jpg").path])
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.stderr.contains("'resnet' is not supported"), unknown.stderr)
        let missing = try run(["encode-image", "--encoder", dir.appendingPathComponent("nothing").path, "x.jpg"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("config.json") && missing.stderr.contains("setup-models.sh"), missing.stderr)
    }
}
