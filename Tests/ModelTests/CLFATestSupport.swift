import Foundation
import XCTest
@testable import Model

/// One CLFA golden fixture (tools/golden/make_clfa_golden.py): the head, its inputs and the numpy
/// reference's stages per post.
struct CLFAFixture {
    /// `expected.json`.
    struct Meta: Decodable {
        let lengths: [Int]
        let has_image: [Bool]
        let layers: Int
        let labels: Int
        let stages: [[String]]
    }

    static let names = ["full", "text-only-rule", "text-only-head"]

    let directory: URL
    let head: CLFAHead
    let meta: Meta
    /// `[B, L, d_t]`, padding rows random.
    let text: Tensor
    /// `[B, K, d_i]`, rows of posts without an image random.
    let image: Tensor
    let expected: SafeTensorsFile

    init(_ name: String) throws {
        directory = TestPaths.fixtures.appendingPathComponent("clfa/\(name)")
        head = try CLFAHead(directory: directory)
        meta = try JSONDecoder().decode(Meta.self, from: Data(contentsOf: directory.appendingPathComponent("expected.json")))
        let inputs = try SafeTensorsFile(path: directory.appendingPathComponent("inputs.safetensors").path)
        text = try inputs.tensor("text")
        image = try inputs.tensor("image")
        expected = try SafeTensorsFile(path: directory.appendingPathComponent("expected.safetensors").path)
    }

    var batch: Int { meta.lengths.count }
    var paddedLength: Int { text.shape[1] }

    /// The whole padded batch through the head; `image` is nil for a text-only head.
    func forwardBatch() throws -> CLFAOutput {
        try head.forward(text: text, textLengths: meta.lengths, image: head.imageWidth == nil ? nil : image,
                         hasImage: meta.has_image, keepStages: true)
    }

    /// Post `b` alone: its valid text rows only (no padding) and its image or nil.
    func forwardAlone(_ b: Int) throws -> CLFAOutput {
        let n = meta.lengths[b], d = text.shape[2]
        let alone = try Tensor(shape: [1, n, d], data: Array(text.data[(b * paddedLength * d)..<((b * paddedLength + n) * d)]))
        var ownImage: Tensor?
        if meta.has_image[b], head.imageWidth != nil {
            let k = image.shape[1], di = image.shape[2]
            ownImage = try Tensor(shape: [1, k, di], data: Array(image.data[(b * k * di)..<((b + 1) * k * di)]))
        }
        return try head.forward(text: alone, textLengths: [n], image: ownImage, hasImage: [meta.has_image[b]], keepStages: true)
    }
}

extension Tensor {
    /// Rows `rows` of `[B, R, d]`'s block `b`, flattened.
    func block(_ b: Int, rows: Range<Int>) -> [Float] {
        let r = shape[shape.count - 2], d = lastDimension
        return Array(data[((b * r + rows.lowerBound) * d)..<((b * r + rows.upperBound) * d)])
    }

    /// Row `b` of a `[B, d]` tensor.
    func row(_ b: Int) -> [Float] {
        Array(data[(b * lastDimension)..<((b + 1) * lastDimension)])
    }
}

/// Writes a copy of CLFA fixture `name` to `dir`: its config with `configChanges` applied (a nil
/// value removes the key) and its weights passed through `edit` (drop, rename, replace, add).
func writeCLFAVariant(_ name: String, to dir: URL, configChanges: [String: Any?] = [:],
                      edit: (inout [String: Tensor]) throws -> Void) throws {
    let source = TestPaths.fixtures.appendingPathComponent("clfa/\(name)")
    var config = try JSONSerialization.jsonObject(with: Data(contentsOf: source.appendingPathComponent("config.json"))) as? [String: Any] ?? [:]
    for (key, value) in configChanges { config[key] = value }
    try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("config.json"))
    let file = try SafeTensorsFile(path: source.appendingPathComponent("model.safetensors").path)
    var tensors: [String: Tensor] = [:]
    for tensorName in file.names { tensors[tensorName] = try file.tensor(tensorName) }
    try edit(&tensors)
    var writer = SafeTensorsWriter()
    for (tensorName, tensor) in tensors.sorted(by: { $0.key < $1.key }) { writer.add(tensorName, tensor) }
    try writer.write(to: dir.appendingPathComponent("model.safetensors"))
}

/// A tensor of the given shape filled with a small ramp (values do not matter to loading tests).
func rampTensor(_ shape: [Int]) throws -> Tensor {
    let count = shape.reduce(1, *)
    return try Tensor(shape: shape, data: (0..<count).map { Float($0 % 7) * 0.01 })
}
