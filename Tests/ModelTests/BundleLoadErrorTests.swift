import Foundation
import XCTest
@testable import Model

/// Broken copies of the tiny bundle fail `ModelBundle.load` with a `ModelLoadError` whose
/// description names what is wrong: the file, the tensor, the manifest field or the kind.
final class BundleLoadErrorTests: XCTestCase {
    /// Copies the fixture, breaks it with `edit`, loads it and returns the error's description.
    private func loadError(_ edit: (BrokenBundle) throws -> Void, file: StaticString = #filePath,
                           line: UInt = #line) throws -> String {
        let bundle = try BrokenBundle(self)
        try edit(bundle)
        do {
            let classifier = try ModelBundle.load(folder: bundle.folder)
            XCTFail("loaded a broken bundle with heads \(classifier.heads.map(\.task))", file: file, line: line)
            return ""
        } catch {
            return error.description
        }
    }

    func testUnchangedCopyLoads() throws {
        let bundle = try BrokenBundle(self)
        try bundle.editManifest { _ in }
        try bundle.editWeights("heads/sarcasm.safetensors") { _ in }
        XCTAssertEqual(try ModelBundle.load(folder: bundle.folder).heads.count, 2)
    }

    func testMissingManifest() throws {
        let message = try loadError { try FileManager.default.removeItem(at: $0.url("manifest.json")) }
        XCTAssertTrue(message.contains("manifest.json") && message.contains("does not exist"), message)
    }

    func testMalformedManifestJSON() throws {
        let message = try loadError { try Data("{\"format\": 1, \"name\": \"tiny\",".utf8).write(to: $0.url("manifest.json")) }
        XCTAssertTrue(message.contains("manifest.json") && message.contains("not valid JSON")
                      && message.contains("end of file"), message)
    }

    func testManifestFieldOfTheWrongType() throws {
        let message = try loadError { try $0.editHead(0) { $0["labels"] = "sarcastic" } }
        XCTAssertTrue(message.contains("manifest.json") && message.contains("heads[0].labels"), message)
    }

    func testUnknownHeadKind() throws {
        let message = try loadError { try $0.editHead(1) { $0["kind"] = "transformer_xl" } }
        XCTAssertTrue(message.contains("'transformer_xl'") && message.contains("head 'correlation'"), message)
    }

    func testMissingWeightsFile() throws {
        let message = try loadError { try FileManager.default.removeItem(at: $0.url("heads/correlation.safetensors")) }
        XCTAssertTrue(message.contains("heads/correlation.safetensors") && message.contains("head 'correlation'"), message)
    }

    func testMissingTensor() throws {
        let cross = "attention_net.layer.1.imageCrossAttn.bertCoAttn.value.weight"
        let clfa = try loadError { try $0.editWeights("heads/sarcasm.safetensors") { $0[cross] = nil } }
        XCTAssertTrue(clfa.contains("'\(cross)'") && clfa.contains("heads/sarcasm.safetensors"), clfa)
        let gru = try loadError { try $0.editWeights("heads/correlation.safetensors") { $0["gru.weight_hh_l0_reverse"] = nil } }
        XCTAssertTrue(gru.contains("'gru.weight_hh_l0_reverse'") && gru.contains("heads/correlation.safetensors"), gru)
    }

    func testWrongTensorShape() throws {
        let ffn = "attention_net.layer.0.intermediate.dense.weight"
        let clfa = try loadError { try $0.editWeights("heads/sarcasm.safetensors") { $0[ffn] = try rampTensor([64, 30]) } }
        XCTAssertTrue(clfa.contains("'\(ffn)'") && clfa.contains("[64, 30]"), clfa)
        // Regions of another width than the image encoder's 32.
        let regions = try loadError { try $0.editWeights("heads/correlation.safetensors") { $0["region_proj.weight"] = try rampTensor([16, 24]) } }
        XCTAssertTrue(regions.contains("region_proj.weight") && regions.contains("24") && regions.contains("32"), regions)
    }

    func testLabelCountDisagreesWithTheClassifier() throws {
        let sarcasm = try loadError { try $0.editHead(0) { $0["labels"] = ["no", "maybe", "yes"]; $0["thresholds"] = nil } }
        XCTAssertTrue(sarcasm.contains("head 'sarcasm'") && sarcasm.contains("3 labels") && sarcasm.contains("classifier.weight"), sarcasm)
        let correlation = try loadError { try $0.editHead(1) { $0["labels"] = ["irrelevant", "explicit"]; $0["thresholds"] = nil } }
        XCTAssertTrue(correlation.contains("head 'correlation'") && correlation.contains("2 labels")
                      && correlation.contains("association.classifier.weight"), correlation)
    }

    func testThresholdForUnknownLabel() throws {
        let message = try loadError { try $0.editHead(0) { $0["thresholds"] = ["very_sarcastic": 0.5] } }
        XCTAssertTrue(message.contains("head 'sarcasm'") && message.contains("'very_sarcastic'"), message)
    }

    func testCLFAWithImageLayersNeedsAnImageEncoder() throws {
        let message = try loadError { bundle in
            try bundle.editManifest { manifest in
                manifest["image_encoder"] = nil
                manifest["heads"] = (manifest["heads"] as? [Any]).map { Array($0.prefix(1)) }
            }
        }
        XCTAssertTrue(message.contains("head 'sarcasm'") && message.contains("image_encoder") && message.contains("mlp_image"), message)
    }

    func testTextWidthMismatch() throws {
        // The CLFA head reads text states of width 24; the tiny BERT gives 32.
        let clfa = try loadError { try $0.editWeights("heads/sarcasm.safetensors") { $0["mlp_text.fc1.weight"] = try rampTensor([48, 24]) } }
        XCTAssertTrue(clfa.contains("head 'sarcasm'") && clfa.contains("mlp_text.fc1.weight") && clfa.contains("24") && clfa.contains("32"), clfa)
        // AnANet's words are GloVe ++ text states: a 4-dim table makes them 36 wide, the GRU reads 40.
        let ananet = try loadError { bundle in
            let words = try String(contentsOf: bundle.url("glove/words.txt"), encoding: .utf8)
            let count = words.split(separator: "\n").count
            try Data(count: count * 4 * MemoryLayout<Float>.size).write(to: bundle.url("glove/vectors.f32"))
            try Data("{\"dims\": 4, \"count\": \(count)}".utf8).write(to: bundle.url("glove/config.json"))
        }
        XCTAssertTrue(ananet.contains("head 'correlation'") && ananet.contains("gru.weight_ih_l0") && ananet.contains("36"), ananet)
    }
}

/// A writable copy of the tiny bundle fixture, with helpers that break it.
struct BrokenBundle {
    let folder: URL

    init(_ test: XCTestCase) throws {
        folder = try temporaryDirectory(test).appendingPathComponent("tiny-bundle")
        try FileManager.default.copyItem(at: BundleFixture.folder, to: folder)
    }

    func url(_ relative: String) -> URL { folder.appendingPathComponent(relative) }

    /// Rewrites manifest.json after `edit` (a nil value removes a key).
    func editManifest(_ edit: (inout [String: Any]) throws -> Void) throws {
        let data = try Data(contentsOf: url("manifest.json"))
        var manifest = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        try edit(&manifest)
        try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted]).write(to: url("manifest.json"))
    }

    /// Edits the manifest's head `index`.
    func editHead(_ index: Int, _ edit: (inout [String: Any]) throws -> Void) throws {
        try editManifest { manifest in
            var heads = manifest["heads"] as? [[String: Any]] ?? []
            try edit(&heads[index])
            manifest["heads"] = heads
        }
    }

    /// Rewrites a safetensors file after `edit`, keeping each name's dtype (new names are F32).
    func editWeights(_ relative: String, _ edit: (inout [String: Tensor]) throws -> Void) throws {
        let source = try SafeTensorsFile(path: url(relative).path)
        var tensors: [String: Tensor] = [:]
        for name in source.names { tensors[name] = try source.tensor(name) }
        try edit(&tensors)
        var writer = SafeTensorsWriter()
        for (name, tensor) in tensors.sorted(by: { $0.key < $1.key }) {
            let dtype = source.entries[name].flatMap { SafeTensorsDType(rawValue: $0.dtype) } ?? .f32
            writer.add(name, tensor, as: dtype)
        }
        try writer.write(to: url(relative))
    }
}
