import Dispatch
import Foundation
import XCTest
@testable import Model

/// Decode + preprocess throughput on the 1200x900 quality-85 benchmark JPEG.
/// Runs only with POSTCLASSD_BENCH=1 (see bench/image/run.sh, which builds in
/// release mode and measures Pillow in the same run).
final class JPEGBenchTests: XCTestCase {
    func testDecodeAndPreprocessThroughput() throws {
        guard ProcessInfo.processInfo.environment["POSTCLASSD_BENCH"] == "1" else {
            throw XCTSkip("benchmark: set POSTCLASSD_BENCH=1 (bench/image/run.sh)")
        }
        try JPEGFixtures.requireLarge()
        let bytes = try JPEGFixtures.bytes("coffee_1200x900_q85", in: JPEGFixtures.large)
        let iterations = Int(ProcessInfo.processInfo.environment["POSTCLASSD_BENCH_ITERATIONS"] ?? "") ?? 300
        let decoder = JPEGDecoder()
        var results: [String: Double] = [:]

        func measure(_ label: String, _ body: () throws -> Void) rethrows {
            for _ in 0..<5 { try body() }  // warm-up
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<iterations { try body() }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            results[label] = Double(iterations) / seconds
            print(String(format: "bench %@: %.1f images/s (%.3f ms each)", label, Double(iterations) / seconds, seconds * 1000 / Double(iterations)))
        }

        var withDCT = ImagePreprocessConfig.clfaViT  // 224x224 squash bilinear, ImageNet, NCHW
        let fast = try ImagePreprocessor(config: withDCT)
        withDCT.dctDownscale = false
        let full = try ImagePreprocessor(config: withDCT)
        var output = [Float](repeating: 0, count: fast.valuesPerImage)
        try output.withUnsafeMutableBufferPointer { out in
            try bytes.withUnsafeBytes { raw in
                try measure("swift_decode_full") { _ = try decoder.decode(raw) }
                try measure("swift_decode_preprocess_dct") { _ = try fast.decodeAndRun(jpeg: raw, decoder: decoder, into: out) }
                try measure("swift_decode_preprocess_full") { _ = try full.decodeAndRun(jpeg: raw, decoder: decoder, into: out) }
            }
        }
        let image = try decoder.decode(bytes).image
        try output.withUnsafeMutableBufferPointer { out in
            try measure("swift_preprocess_only_1200x900") { try full.run(image, into: out) }
        }
        if let path = ProcessInfo.processInfo.environment["POSTCLASSD_BENCH_OUT"] {
            let data = try JSONSerialization.data(withJSONObject: results, options: [.sortedKeys])
            try data.write(to: URL(fileURLWithPath: path))
        }
    }
}
