import Foundation
import XCTest
@testable import Model

/// ViT's `config.json` and `preprocessor_config.json` decoding, and how the encoder uses them.
final class ViTConfigTests: XCTestCase {
    private func preprocess(_ json: String) throws -> ImagePreprocessConfig {
        try JSONDecoder().decode(ViTImageProcessorConfig.self, from: Data(json.utf8)).preprocessConfig(path: "test.json")
    }

    func testConfigDecodesHuggingFaceLayout() throws {
        let json = """
        {"architectures": ["ViTModel"], "model_type": "vit", "hidden_act": "gelu", "hidden_size": 768,
         "image_size": 224, "intermediate_size": 3072, "layer_norm_eps": 1e-12, "num_attention_heads": 12,
         "num_channels": 3, "num_hidden_layers": 12, "patch_size": 32, "qkv_bias": true,
         "attention_probs_dropout_prob": 0.0, "hidden_dropout_prob": 0.0}
        """
        let config = try JSONDecoder().decode(ViTConfig.self, from: Data(json.utf8))
        XCTAssertEqual(config, ViTConfig(hiddenSize: 768, numHiddenLayers: 12, numAttentionHeads: 12, intermediateSize: 3072,
                                         layerNormEps: 1e-12, imageSize: .init(224), patchSize: .init(32)))
        XCTAssertEqual(config.patchGrid.rows, 7)
        XCTAssertEqual(config.patchGrid.columns, 7)
    }

    func testConfigDefaultsAndPairSizes() throws {
        let json = #"{"hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16, "image_size": [32, 64]}"#
        let config = try JSONDecoder().decode(ViTConfig.self, from: Data(json.utf8))
        XCTAssertEqual(config.imageSize, ViTConfig.PixelSize(32, 64))
        XCTAssertEqual(config.patchSize, ViTConfig.PixelSize(16))
        XCTAssertEqual(config.layerNormEps, 1e-12)
        XCTAssertEqual(config.hiddenAct, "gelu")
        XCTAssertTrue(config.qkvBias)
        XCTAssertEqual(config.patchGrid.rows, 2)
        XCTAssertEqual(config.patchGrid.columns, 4)
    }

    func testFixturePreprocessorConfigIsMapped() throws {
        let encoder = try ViTEncoder(directory: TestPaths.tinyViT)
        XCTAssertEqual(encoder.preprocess, ImagePreprocessConfig(
            width: 32, height: 32, resizeMode: .squash, filter: .bicubic, rescaleFactor: 1 / 255,
            mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], layout: .nchw))
        XCTAssertEqual(encoder.config.layerNormEps, 1e-6)
    }

    func testWithoutPreprocessorConfigTheCLFAPresetAtTheModelSize() throws {
        let dir = try temporaryDirectory(self)
        try writeTinyViTVariant(to: dir, keepPreprocessor: false)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("preprocessor_config.json").path))
        var want = ImagePreprocessConfig.clfaViT
        (want.width, want.height) = (32, 32)
        XCTAssertEqual(try ViTEncoder(directory: dir).preprocess, want)
        XCTAssertEqual(want.filter, .bilinear)
        XCTAssertEqual(want.mean, ImagePreprocessConfig.imageNetMean)
    }

    func testLegacyFeatureExtractorLayoutAndSwitches() throws {
        let config = try preprocess("""
            {"feature_extractor_type": "ViTFeatureExtractor", "size": 224, "resample": 2,
             "do_normalize": false, "do_rescale": false, "image_mean": [0.1, 0.2, 0.3]}
            """)
        XCTAssertEqual(config, ImagePreprocessConfig(width: 224, height: 224, filter: .bilinear, rescaleFactor: 1,
                                                     mean: [0, 0, 0], std: [1, 1, 1], layout: .nchw))
    }

    func testMissingKeysTakeViTImageProcessorDefaults() throws {
        let config = try preprocess("{}")
        XCTAssertEqual(config, ImagePreprocessConfig(width: 224, height: 224, filter: .bilinear, rescaleFactor: 1 / 255,
                                                     mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], layout: .nchw))
    }

    func testUnsupportedPreprocessorValuesAreRejected() {
        XCTAssertThrowsError(try preprocess(#"{"resample": 0}"#)) { error in
            guard case let ModelLoadError.invalidConfig(path, detail) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(path, "test.json")
            XCTAssertTrue(detail.contains("resample 0"), detail)
        }
        XCTAssertThrowsError(try preprocess(#"{"size": {"shortest_edge": 224}}"#))
        XCTAssertThrowsError(try preprocess(#"{"image_std": [0.5, 0, 0.5]}"#)) { error in
            guard case ModelLoadError.invalidConfig = error else { return XCTFail("\(error)") }
        }
    }

    func testPreprocessorSizeMustBeTheModelSize() throws {
        let dir = try temporaryDirectory(self)
        try writeTinyViTVariant(to: dir, preprocessor: #"{"size": {"height": 64, "width": 64}}"#)
        XCTAssertThrowsError(try ViTEncoder(directory: dir)) { error in
            guard case let ModelLoadError.inconsistent(detail) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("32x32") && detail.contains("64x64"), detail)
        }
    }
}
