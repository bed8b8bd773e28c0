import XCTest
@testable import Model

/// The manifest's threshold rule, which turns a head's probabilities into its label.
final class LabelDecisionTests: XCTestCase {
    func testBinaryThresholdMovesTheBoundary() {
        let decision = LabelDecision(labels: ["not_sarcastic", "sarcastic"], thresholds: ["sarcastic": 0.22])
        XCTAssertEqual(decision.decide([0.79, 0.21]), 0)
        XCTAssertEqual(decision.decide([0.78, 0.22]), 1, "reaching the threshold wins")
        XCTAssertEqual(decision.decide([0.1, 0.9]), 1)
    }

    func testWithoutThresholdsItIsArgmax() {
        let decision = LabelDecision(labels: ["a", "b", "c"], thresholds: [:])
        XCTAssertEqual(decision.decide([0.2, 0.5, 0.3]), 1)
        XCTAssertEqual(decision.decide([0.6, 0.1, 0.3]), 0)
    }

    func testUnmetThresholdFallsBackToUnthresholdedLabels() {
        let decision = LabelDecision(labels: ["irrelevant", "implicit", "explicit"], thresholds: ["explicit": 0.9])
        XCTAssertEqual(decision.decide([0.05, 0.1, 0.85]), 1, "explicit below 0.9: the best of the others")
        XCTAssertEqual(decision.decide([0.02, 0.03, 0.95]), 2)
    }

    func testManifestRejectsThresholdForUnknownLabel() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("manifest-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let manifest = #"{"format":1,"name":"x","version":"1","text_encoder":{"kind":"bert","path":"t"},"heads":[{"task":"sarcasm","kind":"clfa","weights":"h","labels":["no","yes"],"thresholds":{"maybe":0.5}}]}"#
        try Data(manifest.utf8).write(to: folder.appendingPathComponent("manifest.json"))
        XCTAssertThrowsError(try BundleManifest.load(folder: folder)) { error in
            XCTAssertTrue("\(error)".contains("unknown label 'maybe'"), "\(error)")
        }
    }
}
