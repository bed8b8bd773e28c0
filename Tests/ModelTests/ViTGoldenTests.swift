import Foundation
import XCTest
@testable import Model

/// The ViT encoder against the numpy reference (tools/reference/vit_reference.py): every stage of
/// the tiny random-weight fixture, plus loading (prefix, errors naming tensors, preprocessing).
final class ViTGoldenTests: XCTestCase {
    private static let images = 3

    private var expected: SafeTensorsFile {
        get throws { try SafeTensorsFile(path: TestPaths.tinyViT.appendingPathComponent("expected.safetensors").path) }
    }

    /// The fixture's input images back to back, `[3, 3, 32, 32]`.
    private func pixels() throws -> [Float] {
        let file = try expected
        return try (0..<Self.images).flatMap { i in try file.tensor("i\(i).pixels", expectedShape: [3, 32, 32]).data }
    }

    /// Image `b`'s slice of a `[B, rows, d]` stage.
    private func image(_ b: Int, of stage: Tensor) -> [Float] {
        let perImage = stage.count / stage.shape[0]
        return Array(stage.data[(b * perImage)..<((b + 1) * perImage)])
    }

    private func checkTinyViT(directory: URL, file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try self.expected
        let encoder = try ViTEncoder(directory: directory)
        XCTAssertEqual(encoder.layerCount, 2, file: file, line: line)
        XCTAssertEqual(encoder.tokenCount, 17, file: file, line: line)
        // One batch of all images: batching must not mix images.
        let output = try encoder.forward(try pixels(), batch: Self.images, keepStages: true)
        XCTAssertEqual(output.stages.map(\.shape), [[3, 16, 32], [3, 17, 32], [3, 17, 32], [3, 17, 32]], file: file, line: line)
        XCTAssertEqual(output.tokens.shape, [3, 17, 32], file: file, line: line)
        let names = ["patches", "embeddings", "layer0", "layer1"]
        var worst: Float = 0
        for i in 0..<Self.images {
            for (stage, name) in zip(output.stages + [output.tokens], names + ["tokens"]) {
                let want = try expected.tensor("i\(i).\(name)").data
                let diff = maxAbsDifference(image(i, of: stage), want)
                worst = max(worst, diff)
                XCTAssertLessThan(diff, 1e-4, "image \(i) \(name)", file: file, line: line)
            }
            let cls = Array(try expected.tensor("i\(i).tokens", expectedShape: [17, 32]).data[0..<32])
            XCTAssertLessThan(maxAbsDifference(image(i, of: output.pooled), cls), 1e-4, "image \(i) pooled", file: file, line: line)
        }
        print("tiny-vit max abs difference over all stages: \(worst)")
    }

    func testTinyViTEveryStageMatchesReference() throws {
        try checkTinyViT(directory: TestPaths.tinyViT)
    }

    func testVitPrefixLoads() throws {
        let dir = try temporaryDirectory(self)
        try writeTinyViTVariant(to: dir, rename: { "vit." + $0 })
        let file = try SafeTensorsFile(path: dir.appendingPathComponent("model.safetensors").path)
        XCTAssertTrue(file.contains("vit.encoder.layer.1.layernorm_after.weight"))
        XCTAssertFalse(file.contains("encoder.layer.1.layernorm_after.weight"))
        try checkTinyViT(directory: dir)
    }

    func testEncodeGivesAllTokensAsRegionsAndCLSAsPooled() throws {
        let encoder: any ImageEncoder = try ViTEncoder(directory: TestPaths.tinyViT)
        XCTAssertEqual(encoder.regionWidth, 32)
        XCTAssertNil(encoder.classNames)
        XCTAssertEqual(encoder.preprocess.valuesPerImage, 3 * 32 * 32)
        let encoding = try encoder.encode(try pixels(), batch: Self.images)
        XCTAssertNil(encoding.logits)
        XCTAssertEqual(encoding.regions.shape, [3, 17, 32])
        XCTAssertEqual(encoding.pooled.shape, [3, 32])
        for i in 0..<Self.images {
            let tokens = try expected.tensor("i\(i).tokens").data
            XCTAssertLessThan(maxAbsDifference(image(i, of: encoding.regions), tokens), 1e-4)
            XCTAssertLessThan(maxAbsDifference(image(i, of: encoding.pooled), Array(tokens[0..<32])), 1e-4)
        }
        XCTAssertEqual(try encoder.encode([], batch: 0).regions.shape, [0, 17, 32])
        XCTAssertThrowsError(try encoder.encode([Float](repeating: 0, count: 3 * 32 * 32 - 1), batch: 1)) { error in
            guard case TensorError.shapeMismatch(_, _, let context) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(context.contains("ViT input"), context)
        }
    }

    /// `qkv_bias: false` checkpoints have no query/key/value biases; the result must equal the same
    /// weights with those biases present and zero.
    func testCheckpointWithoutQKVBiases() throws {
        let isQKVBias = { (name: String) in
            name.contains(".attention.attention.") && name.hasSuffix(".bias")
        }
        let zeroed = try temporaryDirectory(self), dropped = try temporaryDirectory(self)
        try writeTinyViTVariant(to: zeroed, transform: { name, tensor in
            isQKVBias(name) ? Tensor(zeros: tensor.shape) : tensor
        })
        try writeTinyViTVariant(to: dropped, rename: { isQKVBias($0) ? nil : $0 },
                                config: { $0.replacingOccurrences(of: "\"qkv_bias\": true", with: "\"qkv_bias\": false") })
        let withoutBias = try ViTEncoder(directory: dropped)
        XCTAssertFalse(withoutBias.config.qkvBias)
        let want = try ViTEncoder(directory: zeroed).forward(try pixels(), batch: Self.images).tokens
        let got = try withoutBias.forward(try pixels(), batch: Self.images).tokens
        XCTAssertLessThan(maxAbsDifference(got.data, want.data), 1e-6)
        // And the biases matter: the fixture's own output differs.
        let original = try ViTEncoder(directory: TestPaths.tinyViT).forward(try pixels(), batch: Self.images).tokens
        XCTAssertGreaterThan(maxAbsDifference(got.data, original.data), 1e-2)
        // With qkv_bias true, the same file is missing a tensor.
        let missing = try temporaryDirectory(self)
        try writeTinyViTVariant(to: missing, rename: { isQKVBias($0) ? nil : $0 })
        XCTAssertThrowsError(try ViTEncoder(directory: missing)) { error in
            guard case ModelLoadError.weights(.missingTensor(_, "encoder.layer.0.attention.attention.query.bias")) = error else {
                return XCTFail("\(error)")
            }
        }
    }

    func testMissingTensorIsNamed() throws {
        let dir = try temporaryDirectory(self)
        try writeTinyViTVariant(to: dir, rename: { $0 == "encoder.layer.1.layernorm_after.bias" ? nil : "vit." + $0 })
        XCTAssertThrowsError(try ViTEncoder(directory: dir)) { error in
            guard case let ModelLoadError.weights(.missingTensor(_, tensor)) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(tensor, "vit.encoder.layer.1.layernorm_after.bias")
            XCTAssertTrue("\(error)".contains("vit.encoder.layer.1.layernorm_after.bias"), "\(error)")
        }
    }

    func testWrongShapeIsNamed() throws {
        let dir = try temporaryDirectory(self)
        try writeTinyViTVariant(to: dir, transform: { name, tensor in
            // Drop the last patch's row: 16 positions for 17 tokens.
            name == "embeddings.position_embeddings" ? (try? Tensor(shape: [1, 16, 32], data: Array(tensor.data.prefix(16 * 32)))) ?? tensor : tensor
        })
        XCTAssertThrowsError(try ViTEncoder(directory: dir)) { error in
            guard case let ModelLoadError.weights(.shapeMismatch(_, tensor, expected, found)) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(tensor, "embeddings.position_embeddings")
            XCTAssertEqual(expected, [1, 17, 32])
            XCTAssertEqual(found, [1, 16, 32])
        }
    }

    func testConfigThatDisagreesWithWeightsIsRejected() throws {
        let dir = try temporaryDirectory(self)
        try writeTinyViTVariant(to: dir, config: { $0.replacingOccurrences(of: "\"num_hidden_layers\": 2", with: "\"num_hidden_layers\": 3") })
        XCTAssertThrowsError(try ViTEncoder(directory: dir)) { error in
            guard case let ModelLoadError.inconsistent(detail) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("num_hidden_layers 3") && detail.contains("has 2 layers"), detail)
        }
    }
}

extension TestPaths {
    static let tinyViT = fixtures.appendingPathComponent("tiny-vit")
}

/// Copies the tiny-vit fixture to `dir`: `config.json` edited by `config`, `preprocessor_config.json`
/// as given (nil leaves it out), and the weights renamed by `rename` (nil drops a tensor) and
/// changed by `transform`.
func writeTinyViTVariant(to dir: URL, rename: (String) -> String? = { $0 },
                         transform: (String, Tensor) -> Tensor = { $1 },
                         config: (String) -> String = { $0 }, preprocessor: String? = nil,
                         keepPreprocessor: Bool = true) throws {
    let configText = try String(contentsOf: TestPaths.tinyViT.appendingPathComponent("config.json"), encoding: .utf8)
    try config(configText).write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
    let preprocessorURL = dir.appendingPathComponent("preprocessor_config.json")
    if let preprocessor {
        try preprocessor.write(to: preprocessorURL, atomically: true, encoding: .utf8)
    } else if keepPreprocessor {
        try FileManager.default.copyItem(at: TestPaths.tinyViT.appendingPathComponent("preprocessor_config.json"), to: preprocessorURL)
    }
    let source = try SafeTensorsFile(path: TestPaths.tinyViT.appendingPathComponent("model.safetensors").path)
    var writer = SafeTensorsWriter()
    for name in source.names {
        guard let newName = rename(name) else { continue }
        writer.add(newName, transform(name, try source.tensor(name)), as: .f16)
    }
    try writer.write(to: dir.appendingPathComponent("model.safetensors"))
}
