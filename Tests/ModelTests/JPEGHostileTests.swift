import Foundation
import XCTest
@testable import Model

/// Hostile inputs: each gives a typed `JPEGError` and never a crash, exit() or leak.
final class JPEGHostileTests: XCTestCase {
    let decoder = JPEGDecoder()

    /// A small deterministic generator (SplitMix64), so failures reproduce.
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Rewrites the SOF marker's height and width (a few bytes: the classic decompression bomb).
    static func withFrameSize(_ jpeg: [UInt8], width: Int, height: Int) -> [UInt8] {
        var b = jpeg
        var i = 2
        while i + 9 < b.count {
            let marker = b[i + 1]
            let length = Int(b[i + 2]) << 8 | Int(b[i + 3])
            if (0xC0...0xC2).contains(marker) {
                b[i + 5] = UInt8(height >> 8); b[i + 6] = UInt8(height & 0xFF)
                b[i + 7] = UInt8(width >> 8); b[i + 8] = UInt8(width & 0xFF)
                return b
            }
            i += 2 + length
        }
        return b
    }

    private func expectError(_ bytes: [UInt8], _ code: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            let d = try decoder.decode(bytes)
            XCTFail("expected \(code), decoded \(d.image.width)x\(d.image.height)", file: file, line: line)
        } catch {
            XCTAssertEqual(error.code, code, "\(error)", file: file, line: line)
            XCTAssertFalse(error.description.isEmpty, file: file, line: line)
        }
    }

    func testZeroBytes() {
        expectError([], "jpeg_empty")
        XCTAssertEqual(JPEGError.empty.description, "image is empty (0 bytes)")
    }

    func testWrongMagic() throws {
        expectError([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13], "jpeg_not_jpeg")  // a PNG
        expectError([0xFF], "jpeg_not_jpeg")
        expectError(Array("GIF89a".utf8), "jpeg_not_jpeg")
        XCTAssertEqual(JPEGError.notJPEG(leadingBytes: [0x89, 0x50, 0x4E, 0x47]).description,
                       "not a JPEG: it starts with 89 50 4E 47, not FF D8")
    }

    /// Cut at many points: inside the headers (libjpeg's own error) or inside
    /// the entropy-coded data (premature end), always an error.
    func testTruncated() throws {
        for name in ["astronaut_baseline", "coffee_progressive", "chelsea_cmyk", "camera_gray"] {
            let full = try JPEGFixtures.bytes(name)
            for fraction in [0.02, 0.1, 0.3, 0.5, 0.8, 0.95] {
                let cut = Array(full.prefix(Int(Double(full.count) * fraction)))
                XCTAssertThrowsError(try decoder.decode(cut), "\(name) cut at \(fraction)") { error in
                    XCTAssertTrue(["jpeg_truncated", "jpeg_corrupt"].contains((error as? JPEGError)?.code ?? ""), "\(error)")
                }
            }
            // Mid-data cut of a baseline file: reported as truncation, not as silently grey pixels.
            if name == "astronaut_baseline" {
                expectError(Array(full.prefix(full.count / 2)), "jpeg_truncated")
            }
        }
        expectError([0xFF, 0xD8], "jpeg_truncated")
        expectError([0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A], "jpeg_truncated")
        // A frame header of 0x0 pixels is libjpeg's own fatal error.
        expectError([0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0, 0, 0, 0, 0x01, 0x01, 0x11, 0x00, 0xFF, 0xD9], "jpeg_corrupt")
    }

    /// A header claiming 30000x30000 is refused from the header, before any pixel buffer exists.
    func testDecompressionBombHeader() throws {
        let bomb = Self.withFrameSize(try JPEGFixtures.bytes("tiny_7x5"), width: 30000, height: 30000)
        XCTAssertEqual(try decoder.readHeader(bomb).width, 30000)
        do {
            _ = try decoder.decode(bomb)
            XCTFail("a 30000x30000 header was decoded")
        } catch {
            XCTAssertEqual(error, .tooManyPixels(width: 30000, height: 30000, limit: 40_000_000))
            XCTAssertEqual(error.description,
                           "JPEG header says 30000x30000 = 900 Mpx, over the limit of 40 Mpx (setting image.max-pixels)")
        }
        // Under the limit the same lie decodes: the data segment ends at the EOI
        // marker, libjpeg warns and fills grey. Strict mode turns that into an error.
        let lie = Self.withFrameSize(try JPEGFixtures.bytes("tiny_7x5"), width: 3000, height: 2000)
        XCTAssertGreaterThan(try decoder.decode(lie).warnings, 0)
        XCTAssertThrowsError(try JPEGDecoder(treatsWarningsAsErrors: true).decode(lie)) { error in
            XCTAssertEqual((error as? JPEGError)?.code, "jpeg_corrupt", "\(error)")
        }
        // The limit is a setting.
        let strict = JPEGDecoder(limits: JPEGDecodeLimits(maxPixels: 10_000))
        XCTAssertThrowsError(try strict.decode(try JPEGFixtures.bytes("astronaut_baseline"))) { error in
            XCTAssertEqual(error as? JPEGError, .tooManyPixels(width: 192, height: 192, limit: 10_000))
        }
    }

    func testByteLimit() throws {
        let bytes = try JPEGFixtures.bytes("astronaut_baseline")
        let strict = JPEGDecoder(limits: JPEGDecodeLimits(maxBytes: 4096))
        XCTAssertThrowsError(try strict.decode(bytes)) { error in
            XCTAssertEqual(error as? JPEGError, .tooManyBytes(size: bytes.count, limit: 4096))
        }
    }

    func testScanLimit() throws {
        let bytes = try JPEGFixtures.bytes("coffee_progressive")
        XCTAssertThrowsError(try JPEGDecoder(limits: JPEGDecodeLimits(maxScans: 2)).decode(bytes)) { error in
            XCTAssertEqual(error as? JPEGError, .tooManyScans(limit: 2))
        }
        XCTAssertNoThrow(try JPEGDecoder(limits: JPEGDecodeLimits(maxScans: 100)).decode(bytes))
    }

    /// Random bytes, with and without a JPEG signature in front.
    func testRandomGarbage() {
        var rng = SplitMix64(state: 42)
        for i in 0..<200 {
            let n = Int.random(in: 1...4096, using: &rng)
            var bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if i % 2 == 0 { bytes = [0xFF, 0xD8] + bytes }
            XCTAssertThrowsError(try decoder.decode(bytes), "garbage \(i)")
        }
    }

    /// Valid files with random bytes overwritten: an error or a picture, never a crash.
    func testCorruptedFilesNeverCrash() throws {
        var rng = SplitMix64(state: 7)
        var errors = 0, decoded = 0
        for name in ["astronaut_baseline", "coffee_progressive", "chelsea_ycck", "rocket_422"] {
            let full = try JPEGFixtures.bytes(name)
            for _ in 0..<60 {
                var b = full
                for _ in 0..<Int.random(in: 1...20, using: &rng) {
                    b[Int.random(in: 2..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
                do {
                    let d = try decoder.decode(b)
                    XCTAssertEqual(d.image.pixels.count, d.image.width * d.image.height * 3)
                    decoded += 1
                } catch {
                    errors += 1
                }
            }
        }
        XCTAssertGreaterThan(errors, 0)
        print("corrupted files: \(errors) errors, \(decoded) decoded with damage")
    }

    /// 1,000 hostile decodes leave resident memory flat (libjpeg's pools freed on every error path).
    func testHostileLoopLeavesMemoryFlat() throws {
        var rng = SplitMix64(state: 1234)
        let baseline = try JPEGFixtures.bytes("astronaut_baseline")
        let progressive = try JPEGFixtures.bytes("coffee_progressive")
        var inputs: [[UInt8]] = [
            [],
            [0x89, 0x50, 0x4E, 0x47],
            Array(baseline.prefix(baseline.count / 2)),
            Array(progressive.prefix(progressive.count * 3 / 4)),
            Self.withFrameSize(try JPEGFixtures.bytes("tiny_7x5"), width: 30000, height: 30000),
            Self.withFrameSize(try JPEGFixtures.bytes("tiny_7x5"), width: 4000, height: 3000),
        ]
        for _ in 0..<10 {
            inputs.append([0xFF, 0xD8] + (0..<2048).map { _ in UInt8.random(in: 0...255, using: &rng) })
        }
        let strictScans = JPEGDecoder(limits: JPEGDecodeLimits(maxScans: 3))
        func round(_ i: Int) {
            _ = try? decoder.decode(inputs[i % inputs.count])
            if i % 10 == 0 { _ = try? strictScans.decode(progressive) }
        }
        for i in 0..<200 { round(i) }  // warm up malloc's arenas
        let before = Self.residentBytes()
        for i in 0..<1000 { round(i) }
        let after = Self.residentBytes()
        let growth = after - before
        print("hostile loop: resident \(before / 1024) KiB -> \(after / 1024) KiB, growth \(growth / 1024) KiB over 1000 decodes")
        XCTAssertLessThan(growth, 4 << 20, "resident memory grew by \(growth) bytes")
    }

    /// Resident set size from /proc/self/statm (Linux); 0 elsewhere.
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
