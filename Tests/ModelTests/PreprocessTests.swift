import Foundation
import XCTest
@testable import Model

/// Preprocessing against the numpy reference (`tools/images/preprocess_reference.py`) and its contract.
final class PreprocessTests: XCTestCase {
    struct Case: Decodable {
        let name: String
        let source: String
        let config: ImagePreprocessConfig
        let file: String
        let count: Int
    }

    struct Cases: Decodable {
        let cases: [Case]
    }

    static func loadFloats(_ url: URL) throws -> [Float] {
        let data = try Data(contentsOf: url)
        return data.withUnsafeBytes { raw in
            (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }

    /// Every golden case (both filters, both modes, both layouts, up- and downscaling) within 1e-4.
    func testMatchesNumpyReference() throws {
        let url = JPEGFixtures.small.appendingPathComponent("preprocess_cases.json")
        let cases = try JSONDecoder().decode(Cases.self, from: Data(contentsOf: url)).cases
        XCTAssertGreaterThanOrEqual(cases.count, 8)
        var worst: Float = 0
        for c in cases {
            let image = try JPEGFixtures.pillowImage(c.source)
            let pre = try ImagePreprocessor(config: c.config)
            let expected = try Self.loadFloats(JPEGFixtures.small.appendingPathComponent(c.file))
            XCTAssertEqual(expected.count, c.count)
            XCTAssertEqual(pre.valuesPerImage, c.count, c.name)
            let got = pre(image)
            guard got.count == expected.count else { continue }
            let diff = maxAbsDifference(got, expected)
            XCTAssertLessThanOrEqual(diff, 1e-4, "\(c.name): max abs diff \(diff)")
            worst = max(worst, diff)
        }
        print("preprocessing vs numpy reference: \(cases.count) cases, worst max abs diff \(worst)")
    }

    /// Same size, rescale 1, no normalisation: the pixels come back exactly (filters are identities at scale 1).
    func testIdentityResizeIsExact() throws {
        let image = try JPEGFixtures.pillowImage("rocket_444_odd")
        for filter in [ImagePreprocessConfig.Filter.bilinear, .bicubic] {
            let config = ImagePreprocessConfig(width: image.width, height: image.height, filter: filter,
                                               rescaleFactor: 1, layout: .nhwc)
            let out = try ImagePreprocessor(config: config)(image)
            XCTAssertEqual(out, image.pixels.map(Float.init), "\(filter)")
        }
    }

    /// Pictures written into a shared batch buffer at their offsets, the rest untouched.
    func testFillsBatchInPlace() throws {
        let config = ImagePreprocessConfig(width: 20, height: 16, resizeMode: .shortestSideCenterCrop, filter: .bicubic,
                                           mean: ImagePreprocessConfig.imageNetMean, std: ImagePreprocessConfig.imageNetStd)
        let pre = try ImagePreprocessor(config: config)
        let images = try ["astronaut_baseline", "coffee_progressive", "tiny_17x3"].map(JPEGFixtures.pillowImage)
        let n = pre.valuesPerImage
        var batch = [Float](repeating: .nan, count: n * images.count + 5)
        try batch.withUnsafeMutableBufferPointer { buffer in
            for (i, image) in images.enumerated() {
                try pre.run(image, into: UnsafeMutableBufferPointer(rebasing: buffer[(i * n)..<((i + 1) * n)]))
            }
        }
        for (i, image) in images.enumerated() {
            XCTAssertEqual(Array(batch[(i * n)..<((i + 1) * n)]), pre(image))
        }
        XCTAssertTrue(batch.suffix(5).allSatisfy(\.isNaN))
        var small = [Float](repeating: 0, count: n - 1)
        try small.withUnsafeMutableBufferPointer { buffer in
            XCTAssertThrowsError(try pre.run(images[0], into: buffer)) { error in
                XCTAssertEqual(error as? PreprocessError, .outputTooSmall(needed: n, got: n - 1))
            }
        }
    }

    /// NCHW and NHWC hold the same values, transposed.
    func testLayoutsAgree() throws {
        let image = try JPEGFixtures.pillowImage("chelsea_cmyk")
        var config = ImagePreprocessConfig.clfaViT
        config.width = 33
        config.height = 21
        let chw = try ImagePreprocessor(config: config)(image)
        config.layout = .nhwc
        let hwc = try ImagePreprocessor(config: config)(image)
        for y in 0..<21 {
            for x in 0..<33 {
                for c in 0..<3 { XCTAssertEqual(chw[c * 33 * 21 + y * 33 + x], hwc[(y * 33 + x) * 3 + c]) }
            }
        }
    }

    /// Bundles carry the config as JSON: snake_case keys, defaults for all but the size.
    func testConfigCodable() throws {
        let json = #"{"width": 224, "height": 224, "resize_mode": "shortest_side_center_crop", "shortest_side": 256, "filter": "bicubic", "layout": "nhwc", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}"#
        let config = try JSONDecoder().decode(ImagePreprocessConfig.self, from: Data(json.utf8))
        XCTAssertEqual(config.resizeMode, .shortestSideCenterCrop)
        XCTAssertEqual(config.shortestSide, 256)
        XCTAssertEqual(config.filter, .bicubic)
        XCTAssertEqual(config.layout, .nhwc)
        XCTAssertEqual(config.rescaleFactor, 1 / 255)
        XCTAssertTrue(config.dctDownscale)
        XCTAssertEqual(config.jpegDownscale, .shortestSideAtLeast(256))
        let minimal = try JSONDecoder().decode(ImagePreprocessConfig.self, from: Data(#"{"width": 8, "height": 4}"#.utf8))
        XCTAssertEqual(minimal, ImagePreprocessConfig(width: 8, height: 4))
        let again = try JSONDecoder().decode(ImagePreprocessConfig.self, from: JSONEncoder().encode(ImagePreprocessConfig.clip))
        XCTAssertEqual(again, .clip)
        XCTAssertEqual(ImagePreprocessConfig.clfaViT.jpegDownscale, .atLeast(width: 224, height: 224))
    }

    func testInvalidConfigsAreRefused() {
        let bad: [ImagePreprocessConfig] = [
            ImagePreprocessConfig(width: 0, height: 10),
            ImagePreprocessConfig(width: 10, height: 10, mean: [0, 0]),
            ImagePreprocessConfig(width: 10, height: 10, std: [1, 0, 1]),
            ImagePreprocessConfig(width: 10, height: 20, resizeMode: .shortestSideCenterCrop, shortestSide: 15),
        ]
        for config in bad {
            XCTAssertThrowsError(try ImagePreprocessor(config: config)) { error in
                guard case .invalidConfig? = error as? PreprocessError else { return XCTFail("\(error)") }
            }
        }
    }

    /// JPEG bytes to encoder input in one call, with DCT downscaling picked from the config.
    func testDecodeAndPreprocess() throws {
        let bytes = try JPEGFixtures.bytes("coffee_progressive")  // 240x160
        var config = ImagePreprocessConfig.clfaViT
        config.width = 56
        config.height = 40
        let pre = try ImagePreprocessor(config: config)
        var out = [Float](repeating: 0, count: pre.valuesPerImage)
        let decoded = try out.withUnsafeMutableBufferPointer { buffer in
            try bytes.withUnsafeBytes { try pre.decodeAndRun(jpeg: $0, decoder: JPEGDecoder(), into: buffer) }
        }
        XCTAssertEqual(decoded.scaleDenominator, 4)  // 60x40 still covers 56x40
        XCTAssertEqual([decoded.image.width, decoded.image.height], [60, 40])
        XCTAssertEqual(out, pre(decoded.image))
        // ImageNet-normalised values of real pixels stay within their theoretical range.
        XCTAssertTrue(out.allSatisfy { $0 > -2.2 && $0 < 2.7 })
    }
}
