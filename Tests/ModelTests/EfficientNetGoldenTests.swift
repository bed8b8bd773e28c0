import CKernels
import Foundation
import XCTest
@testable import Model

extension TestPaths {
    static let tinyEfficientNet = fixtures.appendingPathComponent("tiny-efficientnet")
    static let efficientNetLite0 = models.appendingPathComponent("efficientnet-lite0")
    static let efficientNetReference = efficientNetLite0.appendingPathComponent("reference")
}

/// `[C, H, W]` values (the numpy reference's layout) as `[H, W, C]` (the encoder's).
func channelsLast(_ chw: [Float], channels: Int) -> [Float] {
    let plane = chw.count / channels
    var out = [Float](repeating: 0, count: chw.count)
    for c in 0..<channels {
        for i in 0..<plane { out[i * channels + c] = chw[c * plane + i] }
    }
    return out
}

func argmax(_ values: ArraySlice<Float>) -> Int {
    values.indices.max { values[$0] < values[$1] }.map { $0 - values.startIndex } ?? -1
}

/// The encoder against the numpy reference (tools/reference/efficientnet_reference.py): every stage
/// of the tiny random-weight fixture, and the real EfficientNet-Lite0 on scikit-image's photos.
final class EfficientNetGoldenTests: XCTestCase {
    /// In both bodies of the C kernels (the depthwise rows run in AVX2 + FMA or portable code).
    func testTinyEveryStageMatchesReference() throws {
        for portable in [false, true] {
            pck_force_portable(portable ? 1 : 0)
            defer { pck_force_portable(0) }
            try checkTinyEveryStage()
        }
    }

    private func checkTinyEveryStage() throws {
        let expected = try SafeTensorsFile(path: TestPaths.tinyEfficientNet.appendingPathComponent("expected.safetensors").path)
        let encoder = try EfficientNetLite(directory: TestPaths.tinyEfficientNet)
        XCTAssertEqual(encoder.blockCount, 5)
        XCTAssertEqual(encoder.classNames?.count, 10)
        // Both images in one batch: the batch must not mix images.
        let pixels = try expected.tensor("i0.input").data + expected.tensor("i1.input").data
        let out = try encoder.forward(pixels, batch: 2, keepStages: true)
        XCTAssertEqual(out.stages.count, 1 + 5 + 1)
        XCTAssertEqual(out.regions.shape, [2, 16, 36])
        var worst: Float = 0
        for image in 0..<2 {
            let names = ["stem"] + (0..<5).map { "block\($0)" } + ["head"]
            for (stage, name) in zip(out.stages, names) {
                let want = try expected.tensor("i\(image).\(name)")
                let per = stage.count / 2
                let got = Array(stage.data[(image * per)..<((image + 1) * per)])
                XCTAssertEqual(stage.shape, [2, want.shape[1], want.shape[2], want.shape[0]], name)
                let diff = maxAbsDifference(got, channelsLast(want.data, channels: want.shape[0]))
                worst = max(worst, diff)
                XCTAssertLessThan(diff, 1e-4, "image \(image) \(name)")
            }
            let pooled = Array(out.pooled.data[(image * 36)..<((image + 1) * 36)])
            XCTAssertLessThan(maxAbsDifference(pooled, try expected.tensor("i\(image).pooled").data), 1e-5)
            let logits = try XCTUnwrap(out.logits)
            XCTAssertLessThan(maxAbsDifference(Array(logits.data[(image * 10)..<((image + 1) * 10)]),
                                               try expected.tensor("i\(image).logits").data), 1e-4)
        }
        // The regions are the head's output, cell by cell.
        XCTAssertEqual(out.regions.data, out.stages.last?.data)
        print("tiny-efficientnet max abs difference over all stages: \(worst)")
    }

    func testNHWCInputGivesTheSameResult() throws {
        let expected = try SafeTensorsFile(path: TestPaths.tinyEfficientNet.appendingPathComponent("expected.safetensors").path)
        let nchw = try EfficientNetLite(directory: TestPaths.tinyEfficientNet)
        var config = nchw.config
        config.preprocess.layout = .nhwc
        let file = try SafeTensorsFile(path: TestPaths.tinyEfficientNet.appendingPathComponent("model.safetensors").path)
        let nhwc = try EfficientNetLite(weights: file, config: config, classNames: nil)
        XCTAssertNil(nhwc.classNames)
        let input = try expected.tensor("i1.input").data
        let a = try nchw.encode(input, batch: 1)
        let b = try nhwc.encode(channelsLast(input, channels: 3), batch: 1)
        XCTAssertLessThan(maxAbsDifference(a.regions.data, b.regions.data), 1e-6)
        XCTAssertThrowsError(try nchw.encode(input, batch: 2))
    }

    func testRealWeightsMatchReferenceOnPhotos() throws {
        let index = TestPaths.efficientNetReference.appendingPathComponent("index.json")
        try requireGeneratedFiles(TestPaths.efficientNetLite0.appendingPathComponent("model.safetensors"), index)
        let reference = try ReferenceIndex.load(index)
        let encoder = try EfficientNetLite(directory: TestPaths.efficientNetLite0)
        XCTAssertEqual(encoder.regionWidth, 1280)
        XCTAssertEqual(encoder.preprocess, reference.preprocess)
        let photos = reference.photos.map(\.photo)
        let pixels = try photos.flatMap { try readFloats(TestPaths.efficientNetReference.appendingPathComponent("\($0).input.f32")) }
        // All photos in one batch, and the first alone: batching must not change a result.
        let batched = try encoder.encode(pixels, batch: photos.count)
        let single = try encoder.encode(Array(pixels[0..<(3 * 224 * 224)]), batch: 1)
        XCTAssertEqual(batched.regions.shape, [photos.count, 49, 1280])
        let logits = try XCTUnwrap(batched.logits)
        for (i, photo) in reference.photos.enumerated() {
            let wantLogits = try readFloats(TestPaths.efficientNetReference.appendingPathComponent("\(photo.photo).logits.f32"))
            let gotLogits = Array(logits.data[(i * 1000)..<((i + 1) * 1000)])
            let logitDiff = maxAbsDifference(gotLogits, wantLogits)
            XCTAssertLessThan(logitDiff, 1e-3, photo.photo)
            let wantFeatures = channelsLast(try readFloats(TestPaths.efficientNetReference.appendingPathComponent("\(photo.photo).features.f32")), channels: 1280)
            let featureDiff = maxAbsDifference(Array(batched.regions.data[(i * 49 * 1280)..<((i + 1) * 49 * 1280)]), wantFeatures)
            XCTAssertLessThan(featureDiff, 1e-3, photo.photo)
            XCTAssertEqual(argmax(gotLogits[...]), photo.top5[0].class, photo.photo)
            print("\(photo.photo): top-1 \(encoder.classNames?[photo.top5[0].class] ?? "?"), max abs diff logits \(logitDiff), features \(featureDiff)")
        }
        XCTAssertLessThan(maxAbsDifference(try XCTUnwrap(single.logits).data, Array(logits.data[0..<1000])), 1e-4)
    }

    func testJPEGToClassOnPhotos() throws {
        let index = TestPaths.efficientNetReference.appendingPathComponent("index.json")
        let large = TestPaths.models.appendingPathComponent("test-images")
        try requireGeneratedFiles(TestPaths.efficientNetLite0.appendingPathComponent("model.safetensors"), index,
                                  large.appendingPathComponent("coffee_1200x900_q85.jpg"))
        let reference = try ReferenceIndex.load(index)
        let encoder = try loadImageEncoder(directory: TestPaths.efficientNetLite0)
        let preprocessor = try ImagePreprocessor(config: encoder.preprocess)
        func top5(_ url: URL) throws -> [Int] {
            let decoded = try JPEGDecoder().decodeFile(atPath: url.path, downscale: encoder.preprocess.jpegDownscale)
            let encoding = try encoder.encode(preprocessor(decoded.image), batch: 1)
            let logits = encoding.logits?.data ?? []
            XCTAssertEqual(logits.count, 1000, url.lastPathComponent)
            return Array(logits.indices.sorted { logits[$0] > logits[$1] }.prefix(5))
        }
        func referenceTop1(_ photo: String) throws -> Int {
            try XCTUnwrap(reference.photos.first { $0.photo == photo }).top5[0].class
        }
        // The large JPEGs setup-models.sh makes (resized from the same photos, DCT-downscaled on decode):
        // the reference's top-1 class.
        for (file, photo) in [("coffee_1200x900_q85.jpg", "coffee"), ("astronaut_4000x3000.jpg", "astronaut"),
                              ("astronaut_4000x3000_progressive.jpg", "astronaut")] {
            let got = try top5(large.appendingPathComponent(file))
            XCTAssertEqual(got.first, try referenceTop1(photo), "\(file): got \(got.map { encoder.classNames?[$0] ?? "?" })")
        }
        // The committed small JPEGs (120 to 240 pixels wide, one CMYK): upscaled, so only plausible:
        // the reference's top-1 among the top five.
        let small = TestPaths.fixtures.appendingPathComponent("images")
        for (file, photo) in [("astronaut_baseline.jpg", "astronaut"), ("coffee_progressive.jpg", "coffee"),
                              ("chelsea_cmyk.jpg", "chelsea"), ("rocket_444_odd.jpg", "rocket")] {
            let got = try top5(small.appendingPathComponent(file))
            XCTAssertTrue(got.contains(try referenceTop1(photo)), "\(file): got \(got.map { encoder.classNames?[$0] ?? "?" })")
        }
    }
}

/// `reference/index.json` written by tools/convert_efficientnet_lite0.py --reference.
struct ReferenceIndex: Decodable {
    struct Photo: Decodable {
        struct Class: Decodable { let `class`: Int; let name: String; let probability: Double }
        let photo: String
        let top5: [Class]
    }

    let preprocess: ImagePreprocessConfig
    let photos: [Photo]

    static func load(_ url: URL) throws -> ReferenceIndex {
        try JSONDecoder().decode(ReferenceIndex.self, from: Data(contentsOf: url))
    }
}

/// Little-endian float32 values of a `.f32` file.
func readFloats(_ url: URL) throws -> [Float] {
    let data = try Data(contentsOf: url)
    return data.withUnsafeBytes { raw in
        (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
    }
}
