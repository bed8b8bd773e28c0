import Foundation
import XCTest
@testable import Model

/// Loading errors of the EfficientNet-Lite encoder: each says what is wrong, none crashes.
final class EfficientNetLoadingTests: XCTestCase {
    /// A copy of the tiny fixture with its config.json edited by `edit` and its class names replaced.
    private func variant(edit: (inout [String: Any]) -> Void = { _ in }, classNames: String? = nil) throws -> URL {
        let dir = try temporaryDirectory(self)
        for name in ["model.safetensors", "classes.txt"] {
            try FileManager.default.copyItem(at: TestPaths.tinyEfficientNet.appendingPathComponent(name),
                                             to: dir.appendingPathComponent(name))
        }
        let data = try Data(contentsOf: TestPaths.tinyEfficientNet.appendingPathComponent("config.json"))
        var config = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        edit(&config)
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("config.json"))
        if let classNames { try Data(classNames.utf8).write(to: dir.appendingPathComponent("classes.txt")) }
        return dir
    }

    private func loadError(_ dir: URL) -> String {
        do {
            _ = try EfficientNetLite(directory: dir)
            return "loaded"
        } catch {
            return error.description
        }
    }

    func testUneditedCopyLoads() throws {
        XCTAssertEqual(loadError(try variant()), "loaded")
    }

    func testMissingFilesSayWhatToRun() throws {
        let empty = try temporaryDirectory(self)
        XCTAssertTrue(loadError(empty).contains("config.json") && loadError(empty).contains("setup-models.sh"), loadError(empty))
        let noWeights = try variant()
        try FileManager.default.removeItem(at: noWeights.appendingPathComponent("model.safetensors"))
        XCTAssertTrue(loadError(noWeights).contains("model.safetensors"), loadError(noWeights))
    }

    func testConfigThatDisagreesWithTheWeightsIsRefused() throws {
        let residual = try variant { config in
            var blocks = config["blocks"] as? [[String: Any]] ?? []
            blocks[1]["residual"] = true  // 12 -> 16 channels at stride 2 cannot add its input
            config["blocks"] = blocks
        }
        XCTAssertTrue(loadError(residual).contains("block 1 is marked residual"), loadError(residual))
        let expand = try variant { config in
            var blocks = config["blocks"] as? [[String: Any]] ?? []
            blocks[0]["has_expand_conv"] = true
            config["blocks"] = blocks
        }
        XCTAssertTrue(loadError(expand).contains("has_expand_conv"), loadError(expand))
        let fewerBlocks = try variant { config in
            config["blocks"] = Array((config["blocks"] as? [[String: Any]] ?? []).prefix(4))
        }
        XCTAssertTrue(loadError(fewerBlocks).contains("more blocks"), loadError(fewerBlocks))
        let size = try variant { config in config["image_size"] = 64 }
        XCTAssertTrue(loadError(size).contains("image_size 64"), loadError(size))
        let activation = try variant { config in config["activation"] = "swish" }
        XCTAssertTrue(loadError(activation).contains("swish"), loadError(activation))
    }

    func testClassNamesMustMatchTheClassifier() throws {
        let nine = try variant(classNames: (0..<9).map { "c\($0)\n" }.joined())
        XCTAssertTrue(loadError(nine).contains("9 class names for 10 classes"), loadError(nine))
    }

    func testBlockShapesMustChain() throws {
        let dw = try DepthwiseConv(weight: Tensor(zeros: [8, 1, 3, 3]), bias: [Float](repeating: 0, count: 8),
                                   stride: 1, padding: ConvPadding(top: 1, bottom: 1, left: 1, right: 1), relu6: true)
        let project = try PointwiseConv(weight: Tensor(zeros: [4, 8, 1, 1]), bias: [Float](repeating: 0, count: 4), relu6: false)
        let expand = try PointwiseConv(weight: Tensor(zeros: [6, 4, 1, 1]), bias: [Float](repeating: 0, count: 6), relu6: true)
        XCTAssertThrowsError(try MBConv(expand: expand, depthwise: dw, project: project, residual: false))
        XCTAssertThrowsError(try MBConv(expand: nil, depthwise: dw, project: project, residual: true))
        XCTAssertNoThrow(try MBConv(expand: nil, depthwise: dw, project: project, residual: false))
    }
}
