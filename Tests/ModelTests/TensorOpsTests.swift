import Foundation
import XCTest
@testable import Model

/// Kernels against straightforward scalar versions.
final class TensorOpsTests: XCTestCase {
    private func random(_ count: Int, seed: inout UInt64) -> [Float] {
        (0..<count).map { _ in
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: seed >> 11) % 2000) / 1000 - 1
        }
    }

    func testLinearMatchesNaiveProductWithTransposedWeight() throws {
        var seed: UInt64 = 1
        let (m, k, n) = (5, 7, 3)
        let x = try Tensor(shape: [m, k], data: random(m * k, seed: &seed))
        let w = try Tensor(shape: [n, k], data: random(n * k, seed: &seed))
        let b = random(n, seed: &seed)
        let y = try Linear(weight: w, bias: b)(x)
        XCTAssertEqual(y.shape, [m, n])
        for i in 0..<m {
            for j in 0..<n {
                var s = b[j]
                for t in 0..<k { s += x.data[i * k + t] * w.data[j * k + t] }
                XCTAssertEqual(y.data[i * n + j], s, accuracy: 1e-5)
            }
        }
        XCTAssertThrowsError(try Linear(weight: w, bias: b)(try Tensor(shape: [2, 4], data: [Float](repeating: 0, count: 8))))
    }

    func testLayerNormWithResidual() throws {
        var seed: UInt64 = 2
        let d = 19
        var x = try Tensor(shape: [3, d], data: random(3 * d, seed: &seed))
        let r = try Tensor(shape: [3, d], data: random(3 * d, seed: &seed))
        let g = random(d, seed: &seed), b = random(d, seed: &seed)
        let original = x
        try LayerNorm(gamma: g, beta: b, eps: 1e-5).apply(to: &x, adding: r)
        for row in 0..<3 {
            let v = (0..<d).map { Double(original.data[row * d + $0] + r.data[row * d + $0]) }
            let mean = v.reduce(0, +) / Double(d)
            let variance = v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(d)
            for j in 0..<d {
                let expected = (v[j] - mean) / (variance + 1e-5).squareRoot() * Double(g[j]) + Double(b[j])
                XCTAssertEqual(Double(x.data[row * d + j]), expected, accuracy: 1e-5)
            }
        }
    }

    func testActivations() throws {
        var t = try Tensor(shape: [6], data: [-3, -1, 0, 0.5, 2, 7])
        var g = t
        Activation.gelu.apply(&g)
        // Φ(x)·x with Φ from erf: known values.
        let expected: [Float] = [-0.0040496, -0.1586553, 0, 0.3457312, 1.9544997, 7]
        for (a, e) in zip(g.data, expected) { XCTAssertEqual(a, e, accuracy: 1e-6) }
        var q = t
        Activation.quickGELU.apply(&q)
        XCTAssertEqual(q.data[4], 2 / (1 + exp(-3.404)), accuracy: 1e-6)
        Activation.relu6.apply(&t)
        XCTAssertEqual(t.data, [0, 0, 0, 0.5, 2, 6])
    }

    func testVectorisedExpAndGELUMatchLibm() {
        var worstExp: Float = 0, worstGELU: Float = 0
        var x: Float = -80
        while x < 80 {
            let exact = Foundation.exp(Double(x))
            worstExp = max(worstExp, Float(abs(Double(VecMath.exp(x)) - exact) / exact))
            let v = Double(x * 0.125)
            let exactGELU = 0.5 * v * (1 + Foundation.erf(v / 2.0.squareRoot()))
            worstGELU = max(worstGELU, Float(abs(Double(VecMath.gelu(x * 0.125)) - exactGELU)))
            x += 0.0917
        }
        XCTAssertLessThan(worstExp, 1e-6)
        XCTAssertLessThan(worstGELU, 2e-6)
    }

    func testMaskedSoftmaxGivesPaddedKeysZero() throws {
        var scores: [Float] = [1, 2, 3, 100, 0.5, 0.5, 0.5, -100]
        let mask: [Float] = [0, 0, 0, -Float.greatestFiniteMagnitude]
        scores.withUnsafeMutableBufferPointer { s in
            mask.withUnsafeBufferPointer { m in Softmax.rows(s.baseAddress!, rows: 2, width: 4, mask: m.baseAddress!) }
        }
        let e = [exp(Float(1)), exp(Float(2)), exp(Float(3))]
        let total = e.reduce(0, +)
        XCTAssertEqual(scores[0], e[0] / total, accuracy: 1e-6)
        XCTAssertEqual(scores[3], 0)
        XCTAssertEqual(scores[4], 1.0 / 3, accuracy: 1e-6)
        XCTAssertEqual(scores[7], 0)
    }

    func testAttentionMatchesNaiveVersion() throws {
        var seed: UInt64 = 3
        let (batch, length, d, heads) = (2, 5, 8, 2)
        let qkv = try Tensor(shape: [batch * length, 3 * d], data: random(batch * length * 3 * d, seed: &seed))
        let lengths = [5, 3]
        let mask = MultiHeadAttention.additiveMask(lengths: lengths, paddedLength: length)
        let out = try MultiHeadAttention.selfAttention(qkv: qkv, batch: batch, length: length, heads: heads, additiveMask: mask)
        let dh = d / heads
        for b in 0..<batch {
            for h in 0..<heads {
                for i in 0..<length {
                    func at(_ t: Int, _ part: Int, _ j: Int) -> Double { Double(qkv.data[(b * length + t) * 3 * d + part * d + h * dh + j]) }
                    var scores = (0..<lengths[b]).map { t in (0..<dh).map { at(i, 0, $0) * at(t, 1, $0) }.reduce(0, +) / Double(dh).squareRoot() }
                    let m = scores.max() ?? 0
                    scores = scores.map { Foundation.exp($0 - m) }
                    let total = scores.reduce(0, +)
                    for j in 0..<dh {
                        let expected = (0..<lengths[b]).map { scores[$0] / total * at($0, 2, j) }.reduce(0, +)
                        XCTAssertEqual(Double(out.data[(b * length + i) * d + h * dh + j]), expected, accuracy: 1e-5)
                    }
                }
            }
        }
    }

    func testMaskedMeanIgnoresPadding() throws {
        let states = try Tensor(shape: [2, 3, 2], data: [1, 2, 3, 4, 100, 100, 5, 6, 7, 8, 9, 10])
        let pooled = try Pooling.maskedMean(states, lengths: [2, 3], paddedLength: 3)
        XCTAssertEqual(pooled.data, [2, 3, 7, 8])
    }

    func testGatherRejectsOutOfRangeIDs() throws {
        let table = try Tensor(shape: [3, 2], data: [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(try Gather.rows(of: table, ids: [2, 0], context: "t").data, [4, 5, 0, 1])
        XCTAssertThrowsError(try Gather.rows(of: table, ids: [3], context: "t"))
    }
}
