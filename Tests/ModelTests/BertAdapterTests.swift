import Foundation
import XCTest
@testable import Model

/// LoRA adapters merged at load (`BertAdapter`, `BertEncoder.adapted(by:weights:)`) on the tiny
/// BERT fixture: the adapted encoder equals an encoder loaded from a checkpoint whose weights were
/// changed by `B·A` beforehand, and running the adapted top layers from the shared encoder's kept
/// layer input equals the adapted encoder's whole pass.
final class BertAdapterTests: XCTestCase {
    static let ids = [[2, 7, 8, 9, 3], [2, 12, 3], [2, 20, 21, 22, 23, 24, 25, 3]]

    /// Deterministic factors for `weight` ([out, in]) at rank 2, large enough to move the outputs.
    static func factors(out: Int, in inputs: Int, salt: Int) -> (a: Tensor, b: Tensor) {
        let a = Tensor(uncheckedShape: [2, inputs], data: (0..<(2 * inputs)).map { Float(sin(Double($0 * 7 + salt))) * 0.2 })
        let b = Tensor(uncheckedShape: [out, 2], data: (0..<(out * 2)).map { Float(cos(Double($0 * 5 + salt))) * 0.2 })
        return (a, b)
    }

    static let adapted = ["encoder.layer.1.attention.self.query.weight", "encoder.layer.1.attention.self.value.weight",
                          "encoder.layer.1.intermediate.dense.weight", "encoder.layer.1.output.dense.weight"]

    func adapterFile(in dir: URL, base: SafeTensorsFile) throws -> URL {
        var writer = SafeTensorsWriter()
        for (salt, name) in Self.adapted.enumerated() {
            let shape = try XCTUnwrap(base.entries[name]).shape
            let (a, b) = Self.factors(out: shape[0], in: shape[1], salt: salt)
            writer.add(name + ".lora_A", a)
            writer.add(name + ".lora_B", b)
        }
        let url = dir.appendingPathComponent("adapter.safetensors")
        try writer.write(to: url)
        return url
    }

    func testAdaptedEncoderEqualsMergedCheckpoint() throws {
        let dir = try temporaryDirectory(self)
        let baseFile = try SafeTensorsFile(path: TestPaths.tinyBert.appendingPathComponent("model.safetensors").path)
        let base = try BertEncoder(directory: TestPaths.tinyBert)
        let adapter = try BertAdapter(file: SafeTensorsFile(path: adapterFile(in: dir, base: baseFile).path), layerCount: base.layerCount)
        XCTAssertEqual(adapter.firstLayer, 1)
        let encoder = try base.adapted(by: adapter, weights: baseFile)

        // The same change made to the checkpoint's weights, in float32, loaded as a plain encoder.
        let merged = dir.appendingPathComponent("merged")
        try FileManager.default.createDirectory(at: merged, withIntermediateDirectories: true)
        for name in ["config.json", "vocab.txt"] {
            try FileManager.default.copyItem(at: TestPaths.tinyBert.appendingPathComponent(name), to: merged.appendingPathComponent(name))
        }
        var writer = SafeTensorsWriter()
        for name in baseFile.names where baseFile.entries[name]?.dtype == "F16" {
            var tensor = try baseFile.tensor(name)
            if let salt = Self.adapted.firstIndex(of: name) {
                let (a, b) = Self.factors(out: tensor.shape[0], in: tensor.shape[1], salt: salt)
                for o in 0..<tensor.shape[0] {
                    for i in 0..<tensor.shape[1] {
                        tensor.data[o * tensor.shape[1] + i] += b.data[o * 2] * a.data[i] + b.data[o * 2 + 1] * a.data[tensor.shape[1] + i]
                    }
                }
            }
            writer.add(name, tensor)
        }
        try writer.write(to: merged.appendingPathComponent("model.safetensors"))
        let expected = try BertEncoder(directory: merged).forward(Self.ids)

        let actual = try encoder.forward(Self.ids)
        XCTAssertLessThan(maxAbsDifference(actual.tokenStates.data, expected.tokenStates.data), 1e-5)
        let unchanged = try base.forward(Self.ids)
        XCTAssertGreaterThan(maxAbsDifference(actual.tokenStates.data, unchanged.tokenStates.data), 1e-2,
                             "the adapter changes the outputs")

        // The head's branch: the shared pass keeps layer 1's input, the adapted layers run from it.
        let shared = try base.forward(Self.ids, keepingInputsOf: [1])
        XCTAssertEqual(shared.tokenStates.data, unchanged.tokenStates.data, "keeping an input changes nothing")
        let input = try XCTUnwrap(shared.layerInputs[1])
        XCTAssertEqual(input.shape, [Self.ids.map(\.count).reduce(0, +), base.hiddenSize])
        let branch = try encoder.forward(fromLayer: 1, packedInput: input, lengths: shared.lengths)
        XCTAssertLessThan(maxAbsDifference(branch.tokenStates.data, actual.tokenStates.data), 1e-6)
    }

    func testBrokenAdaptersAreRefusedWithTheReason() throws {
        let dir = try temporaryDirectory(self)
        func refusal(_ tensors: [(String, [Int])]) throws -> String {
            var writer = SafeTensorsWriter()
            for (name, shape) in tensors {
                writer.add(name, Tensor(uncheckedShape: shape, data: [Float](repeating: 0.1, count: shape.reduce(1, *))))
            }
            let url = dir.appendingPathComponent("a-\(UUID().uuidString).safetensors")
            try writer.write(to: url)
            do {
                let adapter = try BertAdapter(file: SafeTensorsFile(path: url.path), layerCount: 2)
                let base = try BertEncoder(directory: TestPaths.tinyBert)
                _ = try base.adapted(by: adapter, weights: SafeTensorsFile(path: TestPaths.tinyBert.appendingPathComponent("model.safetensors").path))
                return "loaded"
            } catch {
                return "\(error)"
            }
        }
        let q = "encoder.layer.1.attention.self.query.weight"
        XCTAssertTrue(try refusal([("encoder.layer.1.attention.self.query.weight", [32, 32])]).contains("is not a LoRA factor"))
        XCTAssertTrue(try refusal([("encoder.layer.7.output.dense.weight.lora_A", [2, 64]), ("encoder.layer.7.output.dense.weight.lora_B", [32, 2])])
            .contains("adapts layer 7, but the text encoder has 2 layers"))
        XCTAssertTrue(try refusal([(q + ".lora_A", [2, 32])]).contains("has only one of lora_A and lora_B"))
        XCTAssertTrue(try refusal([(q + ".lora_A", [2, 32]), (q + ".lora_B", [32, 3])]).contains("whose ranks differ"))
        XCTAssertTrue(try refusal([(q + ".lora_A", [2, 16]), (q + ".lora_B", [32, 2])]).contains("trained for another encoder"))
        XCTAssertTrue(try refusal([("encoder.layer.1.attention.output.LayerNorm.weight.lora_A", [2, 32]),
                                   ("encoder.layer.1.attention.output.LayerNorm.weight.lora_B", [32, 2])]).contains("does not name a layer product"))
        XCTAssertEqual(try refusal([(q + ".lora_A", [2, 32]), (q + ".lora_B", [32, 2])]), "loaded")
    }
}
