import Foundation
import TestSupport
import XCTest
@testable import Model

/// The default bundle's committed sarcasm head (tools/bundles/default/heads, made by
/// tools/train/make_default_sarcasm.sh): its files are the ones recorded, they stay small, and the
/// engine serves the probabilities torch computed for them when they were exported.
final class DefaultSarcasmHeadTests: XCTestCase {
    static let heads = TestPaths.root.appendingPathComponent("tools/bundles/default/heads")

    func testCommittedFilesMatchTheirRecordedSHA256() throws {
        let check = try runProgram("/bin/sh", ["-c", "cd \"$1\" && sha256sum --strict -c SHA256SUMS", "sh", Self.heads.path])
        XCTAssertEqual(check.status, 0, check.output)
        let listed = try String(contentsOf: Self.heads.appendingPathComponent("SHA256SUMS"), encoding: .utf8)
            .split(separator: "\n").compactMap { $0.split(separator: " ", omittingEmptySubsequences: true).last.map(String.init) }
        XCTAssertTrue(listed.contains("sarcasm.safetensors"), "SHA256SUMS lists \(listed)")
    }

    func testCommittedModelFilesStayUnderTenMegabytes() throws {
        let files = try FileManager.default.contentsOfDirectory(at: Self.heads, includingPropertiesForKeys: [.fileSizeKey])
        let total = try files.reduce(0) { $0 + (try $1.resourceValues(forKeys: [.fileSizeKey]).fileSize ?? 0) }
        XCTAssertLessThan(total, 10_000_000, "the default bundle's committed files take \(total) bytes")
    }

    func testEngineServesTheExportedProbabilities() throws {
        let bundle = TestPaths.models.appendingPathComponent("default")
        try requireGeneratedFiles(bundle.appendingPathComponent("manifest.json"), TestPaths.miniLM.appendingPathComponent("model.safetensors"))
        struct Example: Decodable { let id: String; let text: String; let probabilities: [Double] }
        let examples = try String(contentsOf: TestPaths.root.appendingPathComponent("tools/bundles/default/sarcasm-examples.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONDecoder().decode(Example.self, from: Data($0.utf8)) }
        XCTAssertGreaterThanOrEqual(examples.count, 6)
        let classifier = try ModelBundle.load(folder: bundle)
        var timings = StageTimings()
        let results = classifier.classify(examples.map { Post(id: $0.id, text: $0.text, imageJPEG: nil) }, timings: &timings)
        for (example, result) in zip(examples, results) {
            let prediction = try result.get()
            let sarcasm = try XCTUnwrap(prediction.labels.first { $0.task == "sarcasm" })
            let served = sarcasm.probabilities.map { Double($0.probability) }
            XCTAssertEqual(served.count, 2)
            for (a, b) in zip(served, example.probabilities) {
                XCTAssertEqual(a, b, accuracy: 1e-4, "\(example.id): \(example.text)")
            }
        }
    }
}
