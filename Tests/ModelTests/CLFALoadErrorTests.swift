import Foundation
import XCTest
@testable import Model

/// Broken CLFA heads fail to load with a `ModelLoadError` that names the tensor at fault.
final class CLFALoadErrorTests: XCTestCase {
    /// Loads a variant of fixture `name` and returns the load error's description.
    private func loadError(_ name: String = "full", config: [String: Any?] = [:],
                           edit: (inout [String: Tensor]) throws -> Void) throws -> String {
        let dir = try temporaryDirectory(self)
        try writeCLFAVariant(name, to: dir, configChanges: config, edit: edit)
        do {
            let head = try CLFAHead(directory: dir)
            XCTFail("loaded a broken head with \(head.layerCount) layers")
            return ""
        } catch {
            return error.description
        }
    }

    func testUnchangedCopyLoads() throws {
        let dir = try temporaryDirectory(self)
        try writeCLFAVariant("full", to: dir) { _ in }
        XCTAssertEqual(try CLFAHead(directory: dir).layerCount, 3)
    }

    func testMissingTensorIsNamed() throws {
        let name = "attention_net.layer.1.imageCrossAttn.bertCoAttn.key.weight"
        let dir = try temporaryDirectory(self)
        try writeCLFAVariant("full", to: dir) { $0[name] = nil }
        let file = try SafeTensorsFile(path: dir.appendingPathComponent("model.safetensors").path)
        XCTAssertThrowsError(try CLFAHead(weights: file, config: CLFAConfig(attentionHeads: 4))) { error in
            XCTAssertEqual(error as? ModelLoadError, .weights(.missingTensor(file: file.path, tensor: name)))
        }
        let missingNorm = try loadError { $0["attention_net.layer.0.output.LayerNorm.bias"] = nil }
        XCTAssertTrue(missingNorm.contains("'attention_net.layer.0.output.LayerNorm.bias'"), missingNorm)
        let missingMapping = try loadError { $0["mlp_text.fc2.weight"] = nil }
        XCTAssertTrue(missingMapping.contains("'mlp_text.fc2.weight'"), missingMapping)
    }

    func testWrongShapesAreNamed() throws {
        // The image mapping net ends at another width than the text one.
        let image = try loadError {
            $0["mlp_image.fc2.weight"] = try rampTensor([48, 96])
            $0["mlp_image.fc2.bias"] = try rampTensor([48])
        }
        XCTAssertTrue(image.contains("'mlp_image.fc2.weight'") && image.contains("[48, 96]"), image)
        // An attention projection that does not read the hidden width.
        let query = try loadError { $0["attention_net.layer.2.textSelfAttn.bertCoAttn.query.weight"] = try rampTensor([64, 48]) }
        XCTAssertTrue(query.contains("'attention_net.layer.2.textSelfAttn.bertCoAttn.query.weight'"), query)
        // The FFN's output product does not take the intermediate's width.
        let ffn = try loadError { $0["attention_net.layer.0.output.dense.weight"] = try rampTensor([64, 100]) }
        XCTAssertTrue(ffn.contains("'attention_net.layer.0.output.dense.weight'"), ffn)
        // A bias of the wrong length.
        let bias = try loadError { $0["attention_net.layer.1.textSelfAttn.output.dense.bias"] = try rampTensor([63]) }
        XCTAssertTrue(bias.contains("'attention_net.layer.1.textSelfAttn.output.dense.bias'"), bias)
        // The no-image token in another width than mlp_image reads.
        let token = try loadError { $0["no_image_token"] = try rampTensor([3, 20]) }
        XCTAssertTrue(token.contains("'no_image_token'"), token)
    }

    func testLabelCountProblemsAreNamed() throws {
        let one = try loadError {
            $0["classifier.weight"] = try rampTensor([1, 64])
            $0["classifier.bias"] = try rampTensor([1])
        }
        XCTAssertTrue(one.contains("'classifier.weight'") && one.contains("at least 2 labels"), one)
        let bias = try loadError { $0["classifier.bias"] = try rampTensor([3]) }
        XCTAssertTrue(bias.contains("'classifier.bias'") && bias.contains("[3]"), bias)
        let width = try loadError { $0["classifier.weight"] = try rampTensor([2, 32]) }
        XCTAssertTrue(width.contains("'classifier.weight'"), width)
        // A classifier of any other count loads, and its count is reported.
        let dir = try temporaryDirectory(self)
        try writeCLFAVariant("full", to: dir) {
            $0["classifier.weight"] = try rampTensor([5, 64])
            $0["classifier.bias"] = try rampTensor([5])
        }
        XCTAssertEqual(try CLFAHead(directory: dir).labelCount, 5)
    }

    func testNoImageTokenRequiredByLearnedTokenRule() throws {
        let message = try loadError { $0["no_image_token"] = nil }
        XCTAssertTrue(message.contains("'no_image_token'") && message.contains("text_only"), message)
        // The text-only rule does without it.
        let dir = try temporaryDirectory(self)
        try writeCLFAVariant("full", to: dir, configChanges: ["no_image": "text_only"]) { $0["no_image_token"] = nil }
        XCTAssertNil(try CLFAHead(directory: dir).noImageTokenCount)
    }

    func testInconsistentStructureIsNamed() throws {
        // A tensor under attention_net that is not a CLFA name (a renamed checkpoint).
        let unknown = try loadError { $0["attention_net.layer.0.crossAttn.query.weight"] = try rampTensor([64, 64]) }
        XCTAssertTrue(unknown.contains("'attention_net.layer.0.crossAttn.query.weight'"), unknown)
        // A gap in the layer numbers.
        let gap = try loadError { $0["attention_net.layer.5.intermediate.dense.weight"] = try rampTensor([128, 64]) }
        XCTAssertTrue(gap.contains("'attention_net.layer.5.intermediate.dense.weight'"), gap)
        // Cross-attention in a head without an image mapping net.
        let noImage = try loadError {
            for key in $0.keys where key.hasPrefix("mlp_image.") || key == "no_image_token" { $0[key] = nil }
        }
        XCTAssertTrue(noImage.contains("imageCrossAttn") && noImage.contains("mlp_image"), noImage)
        // Heads that do not divide the attention width.
        let heads = try loadError(config: ["attention_heads": 5]) { _ in }
        XCTAssertTrue(heads.contains("'attention_net.layer.0.textSelfAttn.bertCoAttn.query.weight'") && heads.contains("attention_heads"), heads)
    }

    func testConfigDefaultsAndErrors() throws {
        XCTAssertEqual(try JSONDecoder().decode(CLFAConfig.self, from: Data("{}".utf8)),
                       CLFAConfig(attentionHeads: 8, layerNormEps: 1e-12, textLength: 77, noImage: .learnedToken))
        let dir = try temporaryDirectory(self)
        let url = dir.appendingPathComponent("config.json")
        try Data(#"{"no_image": "blank"}"#.utf8).write(to: url)
        XCTAssertThrowsError(try CLFAConfig.load(from: url)) { error in
            guard case .invalidConfig? = error as? ModelLoadError else { return XCTFail("\(error)") }
        }
        try Data(#"{"attention_heads": 0}"#.utf8).write(to: url)
        XCTAssertThrowsError(try CLFAConfig.load(from: url))
        XCTAssertThrowsError(try CLFAConfig.load(from: dir.appendingPathComponent("absent.json"))) { error in
            guard case .missingFile? = error as? ModelLoadError else { return XCTFail("\(error)") }
        }
    }
}
