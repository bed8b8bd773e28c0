import Dispatch
import Foundation
import XCTest
@testable import Model

/// Forward time of a paper-size CLFA head (random weights): d_t 768, d_i 768, mapping 1536 -> 512,
/// 3 layers of 8 heads with FFN 2048, L 77, K 50 (ViT-B/32's tokens), half the posts without an
/// image (learned token). Runs only with POSTCLASSD_BENCH=1; build with -c release for real numbers.
final class CLFABenchTests: XCTestCase {
    func testPaperSizeForwardTime() throws {
        guard ProcessInfo.processInfo.environment["POSTCLASSD_BENCH"] == "1" else {
            throw XCTSkip("benchmark: set POSTCLASSD_BENCH=1")
        }
        var seed: UInt64 = 1
        func tensor(_ shape: [Int], scale: Float) -> Tensor {
            let count = shape.reduce(1, *)
            let values = (0..<count).map { _ -> Float in
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                return (Float(Int64(bitPattern: seed >> 11) % 2000) / 1000 - 1) * scale
            }
            return Tensor(uncheckedShape: shape, data: values)
        }
        func linear(_ out: Int, _ inp: Int) throws -> Linear {
            try Linear(weight: tensor([out, inp], scale: 1 / Float(inp).squareRoot()), bias: tensor([out], scale: 0.1).data)
        }
        let norm = try LayerNorm(gamma: [Float](repeating: 1, count: 512), beta: [Float](repeating: 0, count: 512), eps: 1e-12)
        func attention() throws -> CLFAAttentionSubLayer {
            CLFAAttentionSubLayer(query: try linear(512, 512), keyValue: try linear(1024, 512), output: try linear(512, 512), norm: norm, heads: 8)
        }
        let mlpImage = CLFAMappingNet(fc1: try linear(1536, 768), fc2: try linear(512, 1536))
        let layers = try (0..<3).map { _ in
            CLFALayer(textSelfAttention: try attention(), imageCrossAttention: try attention(),
                      feedForward: CLFAFeedForward(intermediate: try linear(2048, 512), output: try linear(512, 2048), norm: norm))
        }
        let head = CLFAHead(config: CLFAConfig(), mlpText: CLFAMappingNet(fc1: try linear(1536, 768), fc2: try linear(512, 1536)),
                            mlpImage: mlpImage, mappedNoImageToken: try mlpImage(tensor([1, 768], scale: 1)),
                            layers: layers, classifier: try linear(2, 512))
        for batch in [1, 8, 32] {
            let text = tensor([batch, 77, 768], scale: 1), image = tensor([batch, 50, 768], scale: 1)
            let lengths = (0..<batch).map { 20 + ($0 * 13) % 58 }, hasImage = (0..<batch).map { $0 % 2 == 0 }
            let warmUp = try head.forward(text: text, textLengths: lengths, image: image, hasImage: hasImage)
            for b in 0..<batch {
                XCTAssertEqual(warmUp.probabilities.data[2 * b] + warmUp.probabilities.data[2 * b + 1], 1, accuracy: 1e-5)
            }
            let iterations = max(3, 64 / batch)
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<iterations { _ = try head.forward(text: text, textLengths: lengths, image: image, hasImage: hasImage) }
            let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6 / Double(iterations)
            print(String(format: "bench clfa batch %d: %.1f ms per batch, %.2f ms per post (BLAS threads %d)",
                         batch, ms, ms / Double(batch), BLASThreads.current))
        }
    }
}
