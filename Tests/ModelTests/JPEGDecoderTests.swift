import Dispatch
import Foundation
import XCTest
@testable import Model

/// The JPEG test images made by `tools/images/make_test_jpegs.py`, with Pillow's decoding of each.
enum JPEGFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    /// Committed small images.
    static let small = root.appendingPathComponent("Tests/ModelTests/Fixtures/images")
    /// Git-ignored large images (4000x3000 and the benchmark picture).
    static let large = URL(fileURLWithPath: ProcessInfo.processInfo.environment["POSTCLASSD_MODELS_DIR"]
                           ?? root.appendingPathComponent("models").path).appendingPathComponent("test-images")

    struct Expected: Decodable {
        let scale: Int
        let file: String
        let width: Int
        let height: Int
    }

    struct Item: Decodable {
        let name: String
        let kind: String
        let orientation: Int?
        let expected: [Expected]
    }

    struct Manifest: Decodable {
        let images: [Item]
    }

    static func manifest(_ folder: URL) throws -> [Item] {
        try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: folder.appendingPathComponent("manifest.json"))).images
    }

    static func bytes(_ name: String, in folder: URL = small) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: folder.appendingPathComponent(name.hasSuffix(".jpg") ? name : name + ".jpg")))
    }

    static func expectedPixels(_ e: Expected, in folder: URL = small) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: folder.appendingPathComponent(e.file)))
    }

    /// Pillow's decoding of a committed image at full scale.
    static func pillowImage(_ name: String) throws -> RGBImage {
        let item = try XCTUnwrap(try manifest(small).first { $0.name == name }, "no fixture \(name)")
        let e = try XCTUnwrap(item.expected.first { $0.scale == 1 })
        return try RGBImage(width: e.width, height: e.height, pixels: expectedPixels(e))
    }

    /// Skips (or, under CI, fails) when the large images were not generated.
    static func requireLarge() throws {
        let manifest = large.appendingPathComponent("manifest.json")
        guard !FileManager.default.fileExists(atPath: manifest.path) else { return }
        let message = "missing \(large.path); run python3 tools/images/make_test_jpegs.py --no-small"
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            XCTFail(message)
        }
        throw XCTSkip(message)
    }

    /// Mean absolute difference over all samples.
    static func meanAbsDiff(_ a: [UInt8], _ b: [UInt8]) -> Double {
        precondition(a.count == b.count)
        var total = 0
        for i in a.indices { total += abs(Int(a[i]) - Int(b[i])) }
        return a.isEmpty ? 0 : Double(total) / Double(a.count)
    }

    static func maxAbsDiff(_ a: [UInt8], _ b: [UInt8]) -> Int {
        var m = 0
        for i in a.indices { m = max(m, abs(Int(a[i]) - Int(b[i]))) }
        return m
    }
}

/// Decoded pixels against Pillow's decoding of the same files.
final class JPEGDecoderTests: XCTestCase {
    let decoder = JPEGDecoder()

    /// Every committed image at every scale the manifest lists: same size, mean abs diff <= 1 level.
    func testSmallImagesMatchPillow() throws {
        var worstMean = 0.0, worstMax = 0, checked = 0
        let items = try JPEGFixtures.manifest(JPEGFixtures.small)
        for item in items {
            let bytes = try JPEGFixtures.bytes(item.name)
            for e in item.expected {
                let decoded = try decoder.decode(bytes, downscale: .denominator(e.scale))
                XCTAssertEqual(decoded.scaleDenominator, e.scale, item.name)
                XCTAssertEqual(decoded.image.width, e.width, "\(item.name) width at 1/\(e.scale)")
                XCTAssertEqual(decoded.image.height, e.height, "\(item.name) height at 1/\(e.scale)")
                guard decoded.image.width == e.width, decoded.image.height == e.height else { continue }
                let expected = try JPEGFixtures.expectedPixels(e)
                let mean = JPEGFixtures.meanAbsDiff(decoded.image.pixels, expected)
                XCTAssertLessThanOrEqual(mean, 1.0, "\(item.name) at 1/\(e.scale): mean abs diff \(mean)")
                worstMean = max(worstMean, mean)
                worstMax = max(worstMax, JPEGFixtures.maxAbsDiff(decoded.image.pixels, expected))
                checked += 1
            }
        }
        XCTAssertEqual(checked, items.reduce(0) { $0 + $1.expected.count })
        XCTAssertGreaterThan(checked, 30)
        print("JPEG vs Pillow: \(checked) decodes, worst mean abs diff \(worstMean), worst max abs diff \(worstMax)")
    }

    func testHeadersDescribeColourModels() throws {
        let gray = try decoder.readHeader(bytes: "camera_gray")
        XCTAssertEqual(gray.colorSpace, .gray)
        XCTAssertEqual(gray.components, 1)
        let cmyk = try decoder.readHeader(bytes: "chelsea_cmyk")
        XCTAssertEqual(cmyk.colorSpace, .cmyk)
        XCTAssertEqual(cmyk.adobeTransform, 0)
        let ycck = try decoder.readHeader(bytes: "chelsea_ycck")
        XCTAssertEqual(ycck.colorSpace, .ycck)
        XCTAssertEqual(ycck.adobeTransform, 2)
        let progressive = try decoder.readHeader(bytes: "coffee_progressive")
        XCTAssertTrue(progressive.progressive)
        XCTAssertEqual(progressive.colorSpace, .ycbcr)
        XCTAssertEqual([progressive.width, progressive.height], [240, 160])
        XCTAssertFalse(try decoder.readHeader(bytes: "astronaut_baseline").progressive)
    }

    /// Both TIFF byte orders, all 8 orientations: the tag is read and the picture turned like Pillow's exif_transpose.
    func testEveryOrientation() throws {
        for o in 1...8 {
            for order in ["le", "be"] {
                let name = "orientation_\(o)_\(order)"
                let bytes = try JPEGFixtures.bytes(name)
                let header = try decoder.readHeader(bytes)
                XCTAssertEqual(header.orientation.rawValue, o, name)
                let decoded = try decoder.decode(bytes)
                XCTAssertEqual([decoded.image.width, decoded.image.height], o >= 5 ? [32, 48] : [48, 32], name)
                let raw = try JPEGDecoder(appliesOrientation: false).decode(bytes)
                XCTAssertEqual([raw.image.width, raw.image.height], [48, 32], name)
            }
        }
    }

    /// The stored picture turned by `applying` for all 8 cases, on a 3x2 picture small enough to write out.
    func testOrientationTransformsByHand() throws {
        // Pixels numbered 0...5 in row order:  0 1 2 / 3 4 5
        let image = try RGBImage(width: 3, height: 2, pixels: (0..<6).flatMap { [UInt8($0), 0, 0] })
        func reds(_ o: ImageOrientation) -> [UInt8] { stride(from: 0, to: image.applying(o).pixels.count, by: 3).map { image.applying(o).pixels[$0] } }
        XCTAssertEqual(reds(.up), [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(reds(.upMirrored), [2, 1, 0, 5, 4, 3])
        XCTAssertEqual(reds(.down), [5, 4, 3, 2, 1, 0])
        XCTAssertEqual(reds(.downMirrored), [3, 4, 5, 0, 1, 2])
        XCTAssertEqual(reds(.leftMirrored), [0, 3, 1, 4, 2, 5])  // transpose: 2 wide, 3 high
        XCTAssertEqual(reds(.right), [3, 0, 4, 1, 5, 2])  // 90 degrees clockwise
        XCTAssertEqual(reds(.rightMirrored), [5, 2, 4, 1, 3, 0])  // transverse
        XCTAssertEqual(reds(.left), [2, 5, 1, 4, 0, 3])  // 90 degrees counter-clockwise
        XCTAssertEqual(image.applying(.right).width, 2)
    }

    func testEXIFParserIgnoresJunk() {
        // Truncated IFD, wrong magic, bad orientation value: all mean "upright".
        let cases: [[UInt8]] = [
            [0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x0A] + Array("Exif".utf8) + [0, 0, 0x49, 0x49],
            [0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x10] + Array("Exif".utf8) + [0, 0, 0x49, 0x49, 43, 0, 8, 0, 0, 0],
            [0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x1C] + Array("Exif".utf8) + [0, 0, 0x4D, 0x4D, 0, 42, 0, 0, 0, 8,
                                                                          0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 9, 0, 0],
            [0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, 1, 2, 3],
            [0xFF, 0xD8],
        ]
        for bytes in cases {
            bytes.withUnsafeBytes { XCTAssertEqual(JPEGMarkers.orientation(in: $0), .up) }
        }
        // The same block with a valid value, big-endian.
        let good: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x1C] + Array("Exif".utf8) + [0, 0, 0x4D, 0x4D, 0, 42, 0, 0, 0, 8,
                                                                                          0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]
        good.withUnsafeBytes { XCTAssertEqual(JPEGMarkers.orientation(in: $0), .right) }
    }

    /// DCT scale choice: the largest reduction that keeps the upright picture at least as big as asked.
    func testDownscaleChoice() throws {
        let astro = try JPEGFixtures.bytes("astronaut_baseline")  // 192x192
        XCTAssertEqual(try decoder.decode(astro, downscale: .atLeast(width: 48, height: 48)).scaleDenominator, 4)
        XCTAssertEqual(try decoder.decode(astro, downscale: .atLeast(width: 49, height: 20)).scaleDenominator, 2)
        XCTAssertEqual(try decoder.decode(astro, downscale: .atLeast(width: 24, height: 24)).scaleDenominator, 8)
        XCTAssertEqual(try decoder.decode(astro, downscale: .atLeast(width: 500, height: 500)).scaleDenominator, 1)
        XCTAssertEqual(try decoder.decode(astro, downscale: .shortestSideAtLeast(96)).scaleDenominator, 2)
        XCTAssertEqual(try decoder.decode(astro, downscale: .none).scaleDenominator, 1)
        XCTAssertThrowsError(try decoder.decode(astro, downscale: .denominator(3))) { error in
            XCTAssertEqual((error as? JPEGError)?.code, "jpeg_invalid_argument")
        }
        // Stored 240x160 with orientation 6, so upright 160x240: asking for 40x60 upright
        // is 60x40 stored, which 1/4 (60x40) still meets.
        let rotated = try JPEGFixtures.bytes("coffee_progressive_orientation_6")
        let d = try decoder.decode(rotated, downscale: .atLeast(width: 40, height: 60))
        XCTAssertEqual(d.scaleDenominator, 4)
        XCTAssertEqual([d.image.width, d.image.height], [40, 60])
        XCTAssertEqual(try JPEGDecoder(appliesOrientation: false).decode(rotated, downscale: .atLeast(width: 40, height: 60)).scaleDenominator, 2)
    }

    /// Many threads decoding at once get exactly what one thread gets.
    func testConcurrentDecodesAreIndependent() throws {
        let names = ["astronaut_baseline", "coffee_progressive", "camera_gray", "chelsea_cmyk", "chelsea_ycck",
                     "rocket_444_odd", "orientation_7_be", "tiny_7x5"]
        let inputs = try names.map { try JPEGFixtures.bytes($0) }
        let decoder = self.decoder
        let reference = try inputs.map { try decoder.decode($0).image }
        let rounds = 64
        // Each slot is written by exactly one iteration, hence unchecked.
        final class Slots: @unchecked Sendable {
            var values: UnsafeMutableBufferPointer<Bool>
            init(_ n: Int) { values = .allocate(capacity: n); values.initialize(repeating: false) }
            deinit { values.deallocate() }
        }
        let results = Slots(rounds)
        DispatchQueue.concurrentPerform(iterations: rounds) { i in
            let k = i % inputs.count
            // Half of them also hit an error path, to mix longjmp-ing decodes in.
            if i % 2 == 0 { _ = try? decoder.decode(Array(inputs[k].prefix(inputs[k].count / 2))) }
            results.values[i] = (try? decoder.decode(inputs[k]).image) == reference[k]
        }
        XCTAssertTrue(results.values.allSatisfy { $0 })
    }

    func testDecodeFileAndByteLimit() throws {
        let path = JPEGFixtures.small.appendingPathComponent("astronaut_baseline.jpg").path
        let decoded = try decoder.decodeFile(atPath: path)
        XCTAssertEqual(decoded.image.width, 192)
        XCTAssertThrowsError(try JPEGDecoder(limits: JPEGDecodeLimits(maxBytes: 1000)).decodeFile(atPath: path)) { error in
            guard case let .tooManyBytes(size, limit)? = error as? JPEGError else { return XCTFail("\(error)") }
            XCTAssertEqual(limit, 1000)
            XCTAssertGreaterThan(size, 1000)
        }
        XCTAssertThrowsError(try decoder.decodeFile(atPath: "/nonexistent/x.jpg")) { error in
            XCTAssertEqual((error as? JPEGError)?.code, "jpeg_unreadable_file")
        }
    }

    /// 4000x3000 baseline and progressive, full size and DCT-downscaled, against Pillow.
    func testLargeImagesMatchPillow() throws {
        try JPEGFixtures.requireLarge()
        for item in try JPEGFixtures.manifest(JPEGFixtures.large) {
            let bytes = try JPEGFixtures.bytes(item.name, in: JPEGFixtures.large)
            for e in item.expected {
                let start = DispatchTime.now()
                let decoded = try decoder.decode(bytes, downscale: .denominator(e.scale))
                let ms = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
                XCTAssertEqual([decoded.image.width, decoded.image.height], [e.width, e.height], item.name)
                let expected = try JPEGFixtures.expectedPixels(e, in: JPEGFixtures.large)
                guard expected.count == decoded.image.pixels.count else { continue }
                let mean = JPEGFixtures.meanAbsDiff(decoded.image.pixels, expected)
                XCTAssertLessThanOrEqual(mean, 1.0, "\(item.name) at 1/\(e.scale)")
                print("\(item.name) at 1/\(e.scale): \(e.width)x\(e.height), mean abs diff vs Pillow \(mean), decoded in \(Int(ms)) ms")
            }
        }
    }
}

extension JPEGDecoder {
    /// Test helper: the header of a committed fixture.
    func readHeader(bytes name: String) throws -> JPEGHeader {
        try readHeader(JPEGFixtures.bytes(name))
    }
}
