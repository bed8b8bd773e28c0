import Foundation
import XCTest
@testable import Model

/// A bundle with a `zero_shot_imagenet` correlation head loads and labels through `ModelBundle`:
/// the tiny bundle's text encoder and word vectors, the tiny EfficientNet (10 classes) as image
/// encoder, and precomputed description vectors or templates encoded at load. Its load errors
/// name the file or the setting.
final class ZeroShotBundleTests: XCTestCase {
    private func bundle(_ config: [String: Any], vectors: Tensor? = nil) throws -> BrokenBundle {
        let bundle = try BrokenBundle(self)
        try FileManager.default.removeItem(at: bundle.url("image-encoder"))
        try FileManager.default.copyItem(at: TestPaths.fixtures.appendingPathComponent("tiny-efficientnet"), to: bundle.url("image-encoder"))
        try bundle.editManifest { manifest in
            manifest["image_encoder"] = ["kind": "efficientnet_lite", "path": "image-encoder"]
            manifest["heads"] = [["task": "correlation", "kind": "zero_shot_imagenet",
                                  "labels": ["irrelevant", "implicit", "explicit"], "config": config]]
        }
        if let vectors {
            var writer = SafeTensorsWriter()
            writer.add("concepts", vectors)
            try writer.write(to: bundle.url("heads/concepts.safetensors"))
        }
        return bundle
    }

    private static var calibration: [String: Any] { [
        "features": ["similarity", "similarity_mix", "similarity_z", "related"],
        "weights": [[-4, 0, -1, 0], [0, 1, 0, 1], [4, 0, 1, 0]], "bias": [0, 0, 0]] }

    private func labels(_ bundle: BrokenBundle) throws -> [TaskLabel] {
        let classifier = try ModelBundle.load(folder: bundle.folder)
        let jpeg = try [UInt8](Data(contentsOf: TestPaths.fixtures.appendingPathComponent("images/astronaut_baseline.jpg")))
        var timings = StageTimings()
        let results = classifier.classify([Post(id: "a", text: "the cat sat on the mat", imageJPEG: jpeg),
                                           Post(id: "b", text: "nothing to see", imageJPEG: nil)], timings: &timings)
        return try results.map { try $0.get() }.compactMap { $0.labels.first { $0.task == "correlation" } }
    }

    func testPrecomputedVectorsLoadAndLabel() throws {
        let vectors = try Tensor(shape: [10, 32], data: (0..<320).map { Float(($0 * 37) % 11) - 5 })
        let labelled = try labels(try bundle(["concept_vectors": "heads/concepts.safetensors", "calibration": Self.calibration],
                                             vectors: vectors))
        XCTAssertEqual(labelled.map(\.label).last, "no_image")
        let label = try XCTUnwrap(labelled.first)
        XCTAssertEqual(label.head, "zero-shot-imagenet")
        XCTAssertEqual(label.probabilities.map(\.label), ["irrelevant", "implicit", "explicit"])
        XCTAssertEqual(label.probabilities.map(\.probability).reduce(0, +), 1, accuracy: 1e-5)
        XCTAssertEqual(label.evidence.map(\.key), ["concept", "concept_probability", "similarity", "similarity_mix",
                                                   "similarity_z", "related", "match", "words"])
    }

    func testTemplatesAreEncodedWithoutAVectorsFile() throws {
        let labelled = try labels(try bundle(["templates": ["a photo of a {}", "{}"], "calibration": Self.calibration]))
        XCTAssertEqual(labelled.first?.head, "zero-shot-imagenet")
    }

    func testLoadErrorsNameTheProblem() throws {
        func message(_ bundle: BrokenBundle) -> String {
            do { _ = try ModelBundle.load(folder: bundle.folder); return "loaded" } catch { return error.description }
        }
        let missing = message(try bundle(["concept_vectors": "heads/none.safetensors"]))
        XCTAssertTrue(missing.contains("heads/none.safetensors") && missing.contains("does not exist"), missing)
        let shape = message(try bundle(["concept_vectors": "heads/concepts.safetensors"], vectors: try Tensor(shape: [9, 32], data: .init(repeating: 1, count: 288))))
        XCTAssertTrue(shape.contains("concepts") && shape.contains("[9, 32]"), shape)
        let noVectors = try bundle(["calibration": Self.calibration])
        try noVectors.editManifest { $0["word_vectors"] = nil }
        let related = message(noVectors)
        XCTAssertTrue(related.contains("'related' needs word_vectors"), related)
        let old = message(try bundle(["prompt": "a photo of a {}", "implicit_threshold": 0.18]))
        XCTAssertTrue(old.contains("no longer read") && old.contains("calibration"), old)
    }
}
