import Foundation
import XCTest
@testable import Model

/// The safetensors reader: dtypes, and clear errors for broken files.
final class SafeTensorsTests: XCTestCase {
    func testRoundTripF32F16BF16() throws {
        let dir = try temporaryDirectory(self)
        let values: [Float] = [0, 1, -2.5, 0.333251953125, 65504, -1e-3]
        let t = try Tensor(shape: [2, 3], data: values)
        var writer = SafeTensorsWriter()
        writer.add("a.f32", t)
        writer.add("a.f16", t, as: .f16)
        writer.add("a.bf16", t, as: .bf16)
        let url = dir.appendingPathComponent("x.safetensors")
        try writer.write(to: url)
        let file = try SafeTensorsFile(path: url.path)
        XCTAssertEqual(file.names, ["a.bf16", "a.f16", "a.f32"])
        XCTAssertEqual(try file.tensor("a.f32").data, values)
        XCTAssertEqual(try file.tensor("a.f32").shape, [2, 3])
        let f16 = try file.tensor("a.f16").data
        for (a, e) in zip(f16, values) { XCTAssertEqual(a, Float(Float16(e))) }
        let bf16 = try file.tensor("a.bf16", expectedShape: [2, -1]).data
        // bfloat16 keeps 8 bits of mantissa: relative error below 2^-8.
        for (a, e) in zip(bf16, values) { XCTAssertEqual(a, e, accuracy: abs(e) / 256 + 1e-30) }
    }

    func testTruncatedFileNamesFileAndTensor() throws {
        let dir = try temporaryDirectory(self)
        let data = try Data(contentsOf: TestPaths.tinyBert.appendingPathComponent("model.safetensors"))
        let url = dir.appendingPathComponent("model.safetensors")
        try data.prefix(data.count - 100).write(to: url)
        XCTAssertThrowsError(try SafeTensorsFile(path: url.path)) { error in
            guard case let SafeTensorsError.truncated(file, detail) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(file, url.path)
            XCTAssertTrue(detail.contains("tensor '"), detail)
            XCTAssertTrue("\(error)".contains("truncated"))
        }
        // Cut inside the header, and shorter than the length field.
        try data.prefix(40).write(to: url)
        XCTAssertThrowsError(try SafeTensorsFile(path: url.path)) { error in
            guard case SafeTensorsError.truncated = error else { return XCTFail("\(error)") }
        }
        try data.prefix(5).write(to: url)
        XCTAssertThrowsError(try SafeTensorsFile(path: url.path)) { error in
            guard case SafeTensorsError.truncated = error else { return XCTFail("\(error)") }
        }
    }

    func testMissingFileAndBadHeader() throws {
        let dir = try temporaryDirectory(self)
        XCTAssertThrowsError(try SafeTensorsFile(path: dir.appendingPathComponent("nope.safetensors").path)) { error in
            guard case SafeTensorsError.cannotOpen = error else { return XCTFail("\(error)") }
        }
        var bytes = Data()
        withUnsafeBytes(of: UInt64(8).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: Array("not json".utf8))
        let url = dir.appendingPathComponent("bad.safetensors")
        try bytes.write(to: url)
        XCTAssertThrowsError(try SafeTensorsFile(path: url.path)) { error in
            guard case SafeTensorsError.invalidHeader = error else { return XCTFail("\(error)") }
        }
    }

    func testUnsupportedDTypeAndShapeErrors() throws {
        let file = try SafeTensorsFile(path: TestPaths.tinyBert.appendingPathComponent("model.safetensors").path)
        XCTAssertThrowsError(try file.tensor("embeddings.position_ids")) { error in
            XCTAssertEqual(error as? SafeTensorsError,
                           .unsupportedDType(file: file.path, tensor: "embeddings.position_ids", dtype: "I64"))
        }
        XCTAssertThrowsError(try file.tensor("embeddings.LayerNorm.weight", expectedShape: [31])) { error in
            XCTAssertEqual(error as? SafeTensorsError,
                           .shapeMismatch(file: file.path, tensor: "embeddings.LayerNorm.weight", expected: [31], found: [32]))
        }
    }

    func testEncoderReportsMissingTensor() throws {
        let dir = try temporaryDirectory(self)
        try writeTinyBertVariant(to: dir, rename: { $0 == "encoder.layer.1.output.dense.weight" ? nil : $0 })
        XCTAssertThrowsError(try BertEncoder(directory: dir)) { error in
            guard case let ModelLoadError.weights(.missingTensor(file, tensor)) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(tensor, "encoder.layer.1.output.dense.weight")
            XCTAssertTrue(file.hasSuffix("model.safetensors"))
            XCTAssertTrue("\(error)".contains("encoder.layer.1.output.dense.weight"))
        }
    }

    func testEncoderReportsWrongShape() throws {
        let dir = try temporaryDirectory(self)
        try writeTinyBertVariant(to: dir, transform: { name, tensor in
            guard name == "encoder.layer.0.attention.self.key.weight" else { return tensor }
            return try! Tensor(shape: [32, 16], data: Array(tensor.data.prefix(512)))
        })
        XCTAssertThrowsError(try BertEncoder(directory: dir)) { error in
            guard case let ModelLoadError.weights(.shapeMismatch(_, tensor, expected, found)) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(tensor, "encoder.layer.0.attention.self.key.weight")
            XCTAssertEqual(expected, [32, 32])
            XCTAssertEqual(found, [32, 16])
            XCTAssertTrue("\(error)".contains("[32, 16]"), "\(error)")
        }
    }

    func testEncoderReportsTruncatedWeights() throws {
        let dir = try temporaryDirectory(self)
        try writeTinyBertVariant(to: dir)
        let url = dir.appendingPathComponent("model.safetensors")
        let data = try Data(contentsOf: url)
        try data.prefix(data.count / 2).write(to: url)
        XCTAssertThrowsError(try BertEncoder(directory: dir)) { error in
            guard case ModelLoadError.weights(.truncated) = error else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains(url.path))
        }
    }

    func testConfigErrors() throws {
        let dir = try temporaryDirectory(self)
        XCTAssertThrowsError(try BertEncoder(directory: dir)) { error in
            guard case let ModelLoadError.missingFile(path, _) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(path.hasSuffix("config.json"))
        }
        try writeTinyBertVariant(to: dir)
        let configURL = dir.appendingPathComponent("config.json")
        var config = try JSONDecoder().decode(BertConfig.self, from: Data(contentsOf: configURL))
        XCTAssertEqual(config.hiddenSize, 32)
        config.numHiddenLayers = 3
        try JSONEncoder().encode(config).write(to: configURL)
        XCTAssertThrowsError(try BertEncoder(directory: dir)) { error in
            guard case ModelLoadError.inconsistent = error else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("num_hidden_layers 3"), "\(error)")
        }
    }
}
