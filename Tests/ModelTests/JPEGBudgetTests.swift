import Dispatch
import Foundation
import XCTest
@testable import Model

/// Decoding is bounded by a memory budget checked from the header, before libjpeg allocates:
/// a small progressive JPEG whose header claims a big picture (within the pixel limit) used to
/// make libjpeg allocate and zero a whole-image coefficient buffer, several at once.
final class JPEGBudgetTests: XCTestCase {
    /// The 7x5 progressive fixture with its frame header saying 6000x6000 (36 Mpx: under the
    /// 40 Mpx limit), a few hundred bytes.
    private func progressiveBomb() throws -> [UInt8] {
        JPEGHostileTests.withFrameSize(try JPEGFixtures.bytes("tiny_7x5_progressive"), width: 6000, height: 6000)
    }

    /// `jpeg` with comment segments after SOI until it is at least `size` bytes: the same bomb,
    /// but long enough to look like it could hold its picture.
    private static func padded(_ jpeg: [UInt8], to size: Int) -> [UInt8] {
        var out = Array(jpeg.prefix(2))
        while out.count + jpeg.count - 2 < size {
            let payload = min(65_533, size - (out.count + jpeg.count - 2) + 4)
            out += [0xFF, 0xFE, UInt8((payload + 2) >> 8), UInt8((payload + 2) & 0xFF)]
            out += [UInt8](repeating: 0x20, count: payload)
        }
        return out + jpeg.dropFirst(2)
    }

    /// Peak resident memory so far (VmHWM from /proc/self/status), 0 where there is none.
    private static func peakResidentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return 0 }
        return kib * 1024
    }

    /// Decodes `jpeg` on 8 threads at once and returns each result's error.
    private func decodeConcurrently(_ jpeg: [UInt8], with decoder: JPEGDecoder) -> [JPEGError?] {
        let results = Results()
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            do throws(JPEGError) {
                _ = try decoder.decode(jpeg, downscale: .atLeast(width: 224, height: 224))
                results.set(i, nil)
            } catch {
                results.set(i, error)
            }
        }
        return results.values
    }

    /// Each thread's outcome, under a lock.
    private final class Results: @unchecked Sendable {
        private let lock = NSLock()
        private var stored = [JPEGError?](repeating: nil, count: 8)
        func set(_ i: Int, _ error: JPEGError?) { lock.withLock { stored[i] = error } }
        var values: [JPEGError?] { lock.withLock { stored } }
    }

    func testTheHeaderSaysWhatDecodingWouldCost() throws {
        let bomb = try progressiveBomb()
        let header = try JPEGDecoder().readHeader(bomb)
        XCTAssertTrue(header.progressive)
        // 4:2:0: luma in 750x750 blocks, each chroma component in 375x375.
        XCTAssertEqual(header.codedBlocks, 750 * 750 + 2 * 375 * 375)
        // What libjpeg would have allocated for these few hundred bytes: 128 bytes a block, 108 MB.
        XCTAssertGreaterThanOrEqual(header.decoderMemory, header.codedBlocks * 128)
        XCTAssertGreaterThan(header.decoderMemory, 100_000_000)
        let baseline = try JPEGDecoder().readHeader(try JPEGFixtures.bytes("astronaut_baseline"))
        XCTAssertEqual(baseline.codedBlocks, 0, "a single-scan file keeps no coefficient buffer")
        XCTAssertLessThan(baseline.decoderMemory, 4 << 20)
    }

    /// The bomb as sent: far too short for its picture, refused before any buffer exists.
    func testSmallProgressiveBombIsRefusedBeforeAllocating() throws {
        let bomb = try progressiveBomb()
        XCTAssertLessThan(bomb.count, 1024)
        let before = Self.peakResidentBytes()
        let errors = decodeConcurrently(bomb, with: JPEGDecoder())
        let growth = Self.peakResidentBytes() - before
        for error in errors {
            XCTAssertEqual(error?.code, "jpeg_truncated", "\(String(describing: error))")
            XCTAssertTrue(error?.description.contains("6000x6000") ?? false, "\(String(describing: error))")
            XCTAssertTrue(error?.description.contains("only \(bomb.count) bytes") ?? false, "\(String(describing: error))")
        }
        // Before the check each of the 8 decodes allocated and zeroed 108 MB.
        XCTAssertLessThan(growth, 32 << 20, "peak resident memory grew by \(growth) bytes")
    }

    /// Padded to hold a bit per block, the bomb passes the data check and meets the budget.
    func testPaddedBombIsRefusedByTheMemoryBudget() throws {
        let header = try JPEGDecoder().readHeader(try progressiveBomb())
        let bomb = Self.padded(try progressiveBomb(), to: header.codedBlocks / 8 + 64)
        let decoder = JPEGDecoder(limits: JPEGDecodeLimits(maxMemory: 64 << 20))
        let before = Self.peakResidentBytes()
        let errors = decodeConcurrently(bomb, with: decoder)
        let growth = Self.peakResidentBytes() - before
        for error in errors {
            XCTAssertEqual(error?.code, "jpeg_too_much_memory", "\(String(describing: error))")
            let text = error?.description ?? ""
            XCTAssertTrue(text.contains("progressive 6000x6000") && text.contains("limit of 64 MiB"), text)
        }
        XCTAssertLessThan(growth, 32 << 20, "peak resident memory grew by \(growth) bytes")
    }

    /// The budget covers libjpeg's estimate plus the decoded pixels, and a file that fits decodes.
    func testBudgetIsTheEstimatePlusThePixels() throws {
        let bytes = try JPEGFixtures.bytes("coffee_progressive")
        let header = try JPEGDecoder().readHeader(bytes)
        let needed = header.decoderMemory + header.width * header.height * 3
        let exact = JPEGDecoder(limits: JPEGDecodeLimits(maxMemory: needed))
        XCTAssertEqual(try exact.decode(bytes).image.width, header.width)
        XCTAssertThrowsError(try JPEGDecoder(limits: JPEGDecodeLimits(maxMemory: needed - 1)).decode(bytes)) { error in
            XCTAssertEqual((error as? JPEGError)?.code, "jpeg_too_much_memory", "\(error)")
        }
        // Downscaled for a model, fewer pixels: the same budget leaves room.
        XCTAssertNoThrow(try JPEGDecoder(limits: JPEGDecodeLimits(maxMemory: header.decoderMemory + header.width * header.height))
            .decode(bytes, downscale: .denominator(2)))
    }

    /// A header over the pixel limit is still refused by that limit first.
    func testHugeProgressiveHeaderHitsThePixelLimit() throws {
        let bomb = JPEGHostileTests.withFrameSize(try JPEGFixtures.bytes("tiny_7x5_progressive"), width: 30000, height: 30000)
        XCTAssertThrowsError(try JPEGDecoder().decode(bomb)) { error in
            XCTAssertEqual((error as? JPEGError)?.code, "jpeg_too_many_pixels", "\(error)")
        }
    }

    /// The daemon dead-letters these as `undecodable_image`, with the reason.
    func testPostFailureCodeStaysUndecodableImage() throws {
        let loader = try ImageLoader(config: .clip, limits: JPEGDecodeLimits(maxMemory: 64 << 20))
        let header = try JPEGDecoder().readHeader(try progressiveBomb())
        for bomb in [try progressiveBomb(), Self.padded(try progressiveBomb(), to: header.codedBlocks / 8 + 64)] {
            guard case let .failure(failure) = loader.load(bomb) else { return XCTFail("a bomb was loaded") }
            XCTAssertEqual(failure.code, "undecodable_image")
            XCTAssertTrue(failure.message.contains("jpeg_truncated") || failure.message.contains("jpeg_too_much_memory"), failure.message)
        }
    }
}
