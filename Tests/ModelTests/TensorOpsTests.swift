import Foundation
import CKernels
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

    /// Runs `check` once per kernel body this CPU has: the widest (AVX-512 where the CPU has it,
    /// else AVX2), AVX2 and portable, passing the body's name for failure messages.
    private func forEachKernelBody(_ check: (String) throws -> Void) rethrows {
        for forced in ["none", "avx2", "portable"] {
            pck_force_avx2(forced == "avx2" ? 1 : 0)
            pck_force_portable(forced == "portable" ? 1 : 0)
            defer { pck_force_avx2(0); pck_force_portable(0) }
            try check(forced == "none" ? (pck_uses_avx512() == 1 ? "avx512" : "widest") : forced)
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

    /// Every body of the C kernels this CPU has (AVX-512 for GELU, AVX2 + FMA, portable) against
    /// libm's erf and exp; 1,744 inputs, so the AVX-512 body ends in a masked tail.
    func testGELUAndSoftmaxKernelsMatchLibmInBothBodies() {
        let xs = stride(from: Float(-10), to: 10, by: 0.01147).map { $0 }
        forEachKernelBody { body in
            var g = xs
            g.withUnsafeMutableBufferPointer { pck_gelu($0.baseAddress!, $0.count) }
            var worstGELU = 0.0
            for (x, y) in zip(xs, g) {
                let v = Double(x)
                worstGELU = max(worstGELU, abs(Double(y) - 0.5 * v * (1 + Foundation.erf(v / 2.0.squareRoot()))))
            }
            XCTAssertLessThan(worstGELU, 2e-6, "body: \(body)")

            // One row of 1,001 scores over a wide range: every probability within 1e-6 relative.
            let row = stride(from: Float(-80), to: 0, by: 0.08).map { $0 }
            var s = row
            s.withUnsafeMutableBufferPointer { pck_softmax_rows($0.baseAddress!, 1, $0.count, nil) }
            let exps = row.map { Foundation.exp(Double($0) - Double(row.max()!)) }
            let total = exps.reduce(0, +)
            var worstRelative = 0.0
            for (p, e) in zip(s, exps) where e / total > 1e-30 {
                worstRelative = max(worstRelative, abs(Double(p) - e / total) / (e / total))
            }
            XCTAssertLessThan(worstRelative, 2e-6, "body: \(body)")
        }
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

    /// Masked rows wider than one AVX2 vector (12 keys, the last 5 hidden) and than one AVX-512
    /// vector (21 keys, the last 7 hidden: a masked tail of 5 lanes), in every body.
    func testMaskedSoftmaxWideRowInEveryBody() {
        let scores: [Float] = [0.3, -1, 2, 0.7, 5, -3, 1.5, 90, 2, 4, 1, 0, 3, -2, 6, 1, 1, 2, 0.5, 7, 8]
        for (width, kept) in [(12, 7), (21, 14)] {
            let mask = [Float](repeating: 0, count: kept) + [Float](repeating: -Float.greatestFiniteMagnitude, count: width - kept)
            let largest = Double(scores[0..<kept].max()!)
            let e = scores[0..<kept].map { Foundation.exp(Double($0) - largest) }
            let total = e.reduce(0, +)
            forEachKernelBody { body in
                var s = Array(scores[0..<width])
                s.withUnsafeMutableBufferPointer { sb in
                    mask.withUnsafeBufferPointer { Softmax.rows(sb.baseAddress!, rows: 1, width: width, mask: $0.baseAddress!) }
                }
                for j in 0..<kept { XCTAssertEqual(Double(s[j]), e[j] / total, accuracy: 1e-6, "width \(width), body: \(body)") }
                XCTAssertEqual(Array(s[kept...]), [Float](repeating: 0, count: width - kept), "width \(width), body: \(body)")
            }
        }
    }

    /// Attention against a float64 loop, in every kernel body this CPU has: a head width of 4
    /// (portable only), 16 with lengths that are not a multiple of 4, 8 or 16, MiniLM's 32 x 64,
    /// 48 (three AVX-512 value blocks), and 64 with a length over 64 (five key blocks: 4 + 1).
    func testAttentionMatchesNaiveVersion() throws {
        for (batch, length, d, heads, lengths) in [(2, 5, 8, 2, [5, 3]), (2, 37, 32, 2, [37, 20]), (2, 64, 384, 12, [64, 13]),
                                                   (1, 23, 96, 2, [23]), (1, 70, 64, 1, [66])] {
            try forEachKernelBody { body in
                try checkAttention(batch: batch, length: length, d: d, heads: heads, lengths: lengths,
                                   label: "L=\(length) d=\(d) heads=\(heads) body=\(body)")
            }
        }
    }

    private func checkAttention(batch: Int, length: Int, d: Int, heads: Int, lengths: [Int], label: String) throws {
        var seed: UInt64 = 3
        let qkv = try Tensor(shape: [batch * length, 3 * d], data: random(batch * length * 3 * d, seed: &seed))
        let mask = MultiHeadAttention.additiveMask(lengths: lengths, paddedLength: length)
        let out = try MultiHeadAttention.selfAttention(qkv: qkv, batch: batch, length: length, heads: heads, additiveMask: mask)
        // The (post, head) pairs split over three slices give the same contexts.
        let sliced = try MultiHeadAttention.selfAttention(qkv: qkv, batch: batch, length: length, heads: heads,
                                                          additiveMask: mask, threads: 3)
        XCTAssertEqual(sliced, out, label)
        let dh = d / heads
        var worst = 0.0
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
                        worst = max(worst, abs(Double(out.data[(b * length + i) * d + h * dh + j]) - expected))
                    }
                }
            }
        }
        XCTAssertLessThan(worst, 1e-5, label)
    }

    /// Sliced products (rows for tall inputs, columns for short ones) and sliced kernels agree
    /// with the single-slice versions.
    func testSlicedOperationsMatchOneSlice() throws {
        var seed: UInt64 = 11
        let layer = try Linear(weight: Tensor(shape: [40, 24], data: random(40 * 24, seed: &seed)),
                               bias: random(40, seed: &seed))
        for rows in [5, 300] {  // 5 rows: column slices; 300: row slices
            let x = try Tensor(shape: [rows, 24], data: random(rows * 24, seed: &seed))
            let one = try layer(x), sliced = try layer(x, threads: 3)
            XCTAssertEqual(sliced.shape, one.shape)
            XCTAssertLessThan(maxAbsDifference(sliced.data, one.data), 1e-5, "\(rows) rows")
        }
        var g = try Tensor(shape: [1000], data: random(1000, seed: &seed).map { $0 * 4 })
        var gSliced = g
        Activation.gelu.apply(&g)
        Activation.gelu.apply(&gSliced, threads: 3)
        XCTAssertEqual(g, gSliced)
        let norm = try LayerNorm(gamma: random(16, seed: &seed), beta: random(16, seed: &seed), eps: 1e-5)
        let residual = try Tensor(shape: [50, 16], data: random(800, seed: &seed))
        var n1 = try Tensor(shape: [50, 16], data: random(800, seed: &seed))
        var n2 = n1
        try norm.apply(to: &n1, adding: residual)
        try norm.apply(to: &n2, adding: residual, threads: 3)
        XCTAssertEqual(n1, n2)
        XCTAssertEqual(Parallel.slices(count: 100, parts: 3, granularity: 16), [0..<32, 32..<64, 64..<100])
        XCTAssertEqual(Parallel.slices(count: 10, parts: 4, granularity: 16), [0..<10])
        XCTAssertEqual(Parallel.slices(count: 0, parts: 2), [])
    }

    /// A layer with a packed weight gives the sgemm product of the plain layer, on one slice and on
    /// three, with and without bias, in every kernel body: short inputs take the packed kernel, and
    /// so do tall ones (289 rows) where the AVX-512 body runs; with the AVX2 body, past 96 rows per
    /// slice, they take sgemm again.
    func testPackedWeightMatchesSgemm() throws {
        var seed: UInt64 = 23
        // 40 outputs: two full panels of 16 and a partial one; 24 inputs.
        let plain = try Linear(weight: Tensor(shape: [40, 24], data: random(40 * 24, seed: &seed)),
                               bias: random(40, seed: &seed))
        let packed = plain.packedForShortInputs()
        XCTAssertNotNil(packed.packed)
        // One copy where the packed product takes every row count (the AVX-512 body), both otherwise.
        XCTAssertEqual(packed.weight.data.isEmpty, Linear.defaultPackedRowLimit == Int.max)
        XCTAssertEqual([packed.outFeatures, packed.inFeatures], [40, 24])
        for rows in [1, 7, 96, 289] {
            let x = try Tensor(shape: [rows, 24], data: random(rows * 24, seed: &seed))
            for threads in [1, 3] {
                for bias in [true, false] {
                    let want = try plain(x, threads: threads, includingBias: bias)
                    try forEachKernelBody { body in
                        let got = try packed(x, threads: threads, includingBias: bias)
                        XCTAssertEqual(got.shape, want.shape)
                        XCTAssertLessThan(maxAbsDifference(got.data, want.data), 1e-5,
                                          "\(rows) rows, \(threads) threads, bias \(bias), body \(body)")
                    }
                }
            }
        }
    }

    /// A product without its bias, then bias + GELU (or bias + residual + LayerNorm) in one pass,
    /// equals the product with its bias followed by the plain pass, in every kernel body.
    func testBiasFusedIntoTheNextPass() throws {
        var seed: UInt64 = 17
        let layer = try Linear(weight: Tensor(shape: [40, 24], data: random(40 * 24, seed: &seed)),
                               bias: random(40, seed: &seed).map { $0 * 3 })
        let x = try Tensor(shape: [300, 24], data: random(300 * 24, seed: &seed))
        let norm = try LayerNorm(gamma: random(40, seed: &seed), beta: random(40, seed: &seed), eps: 1e-5)
        let residual = try Tensor(shape: [300, 40], data: random(300 * 40, seed: &seed))
        try forEachKernelBody { body in
            var fused = try layer(x, threads: 2, includingBias: false)
            try Activation.gelu.apply(&fused, bias: layer.bias ?? [], threads: 2)
            var plain = try layer(x)
            Activation.gelu.apply(&plain)
            XCTAssertLessThan(maxAbsDifference(fused.data, plain.data), 1e-5, "body: \(body)")

            var fusedNorm = try layer(x, includingBias: false)
            try norm.apply(to: &fusedNorm, adding: residual, bias: layer.bias, threads: 2)
            var plainNorm = try layer(x)
            try norm.apply(to: &plainNorm, adding: residual)
            XCTAssertLessThan(maxAbsDifference(fusedNorm.data, plainNorm.data), 1e-5, "body: \(body)")
        }
        var relu = try layer(x, includingBias: false)
        try Activation.relu6.apply(&relu, bias: layer.bias ?? [])
        var reluPlain = try layer(x)
        Activation.relu6.apply(&reluPlain)
        XCTAssertLessThan(maxAbsDifference(relu.data, reluPlain.data), 1e-5)
        XCTAssertThrowsError(try Activation.gelu.apply(&relu, bias: [1, 2]))
    }

    /// The packed-weight 1x1 conv kernel against a float64 loop, in every body this CPU has, over
    /// shapes that reach every path: rows that are not a multiple of the 6-row (AVX2) or 12-row
    /// (AVX-512) block (cut evenly: 13 = 7 + 6, 31 = 11 + 10 + 10), five full blocks of 12 whose odd
    /// last panel goes 24 rows at a time and then 12 (60 -> 40), outputs that end in a partial panel of 16 (45 = 16 + 16 + 13, 8 = half a
    /// panel, 3) or in an odd panel after the AVX-512 pairs (45, 40, 200), few and many inputs
    /// (more than one group of panels fits in L2 at 1152), a single partial panel 24 rows at a time
    /// (50 -> 3: 24 + 24 + 2), residual and ReLU6.
    func testPackedPointwiseConvMatchesNaiveVersion() throws {
        var seed: UInt64 = 23
        for (pixels, inputs, outputs) in [(7, 20, 45), (13, 1152, 40), (1, 3, 8), (6, 16, 3), (25, 64, 96), (31, 384, 200),
                                          (60, 24, 40), (50, 10, 3)] {
            let weight = try Tensor(shape: [outputs, inputs, 1, 1], data: random(outputs * inputs, seed: &seed).map { $0 * 2 })
            let bias = random(outputs, seed: &seed)
            let x = try Tensor(shape: [1, 1, pixels, inputs], data: random(pixels * inputs, seed: &seed).map { $0 * 3 })
            let residual = try Tensor(shape: [1, 1, pixels, outputs], data: random(pixels * outputs, seed: &seed))
            for relu6 in [false, true] {
                let conv = try PointwiseConv(weight: weight, bias: bias, relu6: relu6)
                try forEachKernelBody { body in
                    for adding in [nil, residual] {
                        let y = try conv(x, adding: adding)
                        XCTAssertEqual(y.shape, [1, 1, pixels, outputs])
                        var worst = 0.0
                        for p in 0..<pixels {
                            for o in 0..<outputs {
                                var v = Double(bias[o]) + Double(adding?.data[p * outputs + o] ?? 0)
                                for i in 0..<inputs { v += Double(x.data[p * inputs + i]) * Double(weight.data[o * inputs + i]) }
                                if relu6 { v = min(max(v, 0), 6) }
                                worst = max(worst, abs(Double(y.data[p * outputs + o]) - v))
                            }
                        }
                        let label = "\(pixels)x\(inputs)->\(outputs) relu6 \(relu6) residual \(adding != nil) body \(body)"
                        XCTAssertLessThan(worst, 1e-5 * Double(max(1, inputs / 16)), label)
                    }
                }
            }
        }
    }

    /// The depthwise kernel against a float64 loop, in every body this CPU has, on maps narrow enough that
    /// every pixel takes the edge path (width 3, k 5), wide enough for the groups of eight and
    /// four (width 21), with stride 2, asymmetric padding and a channel count with a scalar tail.
    /// The AVX-512 body's row slices (3 x 3 and 5 x 5, rows of 7 or at least 8 outputs) and its
    /// general path (a 7 x 7 kernel, a row of 6 outputs) each get cases.
    func testDepthwiseConvMatchesNaiveVersion() throws {
        var seed: UInt64 = 5
        let cases: [(h: Int, w: Int, c: Int, k: Int, stride: Int, pad: ConvPadding)] = [
            (3, 3, 16, 5, 1, ConvPadding(top: 2, bottom: 2, left: 2, right: 2)),
            (9, 21, 20, 3, 1, ConvPadding(top: 1, bottom: 1, left: 1, right: 1)),
            (10, 21, 24, 5, 2, ConvPadding(top: 1, bottom: 2, left: 1, right: 2)),
            (8, 30, 8, 3, 2, ConvPadding(top: 0, bottom: 1, left: 0, right: 1)),
            // stride 1 with a 5 x 5 kernel: two groups of eight inside pixels per row, channels not a multiple of 8
            (6, 20, 20, 5, 1, ConvPadding(top: 2, bottom: 2, left: 2, right: 2)),
            // every pixel of a 7-wide row under a 5 x 5 kernel is an edge pixel: 32-channel blocks, then 8, then scalar
            (7, 7, 44, 5, 1, ConvPadding(top: 2, bottom: 2, left: 2, right: 2)),
            // AVX-512: 64-channel edge blocks then a masked 16-lane tail (100 = 64 + 16 + 16 + 4), inside groups of eight and four
            (5, 19, 100, 3, 1, ConvPadding(top: 1, bottom: 1, left: 1, right: 1)),
            // AVX-512 row slices with P = 7: a 7-wide row under a 3 x 3 kernel, a masked channel tail
            (7, 7, 40, 3, 1, ConvPadding(top: 1, bottom: 1, left: 1, right: 1)),
            // the general AVX-512 path: a 7 x 7 kernel (groups of eight and four, edges), six outputs
            // (one group of four and edges); then row slices with seven outputs at stride 2
            (5, 23, 36, 7, 1, ConvPadding(top: 3, bottom: 3, left: 3, right: 3)),
            (4, 6, 20, 3, 1, ConvPadding(top: 1, bottom: 1, left: 1, right: 1)),
            (14, 14, 48, 3, 2, ConvPadding(top: 0, bottom: 1, left: 0, right: 1)),
        ]
        for t in cases {
            let weight = try Tensor(shape: [t.c, 1, t.k, t.k], data: random(t.c * t.k * t.k, seed: &seed))
            let bias = random(t.c, seed: &seed)
            let x = try Tensor(shape: [2, t.h, t.w, t.c], data: random(2 * t.h * t.w * t.c, seed: &seed).map { $0 * 4 })
            for relu6 in [false, true] {
                let conv = try DepthwiseConv(weight: weight, bias: bias, stride: t.stride, padding: t.pad, relu6: relu6)
                try forEachKernelBody { body in
                    let y = try conv(x)
                    let (oh, ow) = (y.shape[1], y.shape[2])
                    XCTAssertEqual(oh, (t.pad.top + t.h + t.pad.bottom - t.k) / t.stride + 1)
                    XCTAssertEqual(ow, (t.pad.left + t.w + t.pad.right - t.k) / t.stride + 1)
                    var worst = 0.0
                    for b in 0..<2 {
                        for oy in 0..<oh {
                            for ox in 0..<ow {
                                for ch in 0..<t.c {
                                    var v = Double(bias[ch])
                                    for ky in 0..<t.k {
                                        for kx in 0..<t.k {
                                            let iy = oy * t.stride - t.pad.top + ky, ix = ox * t.stride - t.pad.left + kx
                                            guard iy >= 0, iy < t.h, ix >= 0, ix < t.w else { continue }
                                            v += Double(weight.data[(ch * t.k + ky) * t.k + kx]) * Double(x.data[((b * t.h + iy) * t.w + ix) * t.c + ch])
                                        }
                                    }
                                    if relu6 { v = min(max(v, 0), 6) }
                                    worst = max(worst, abs(Double(y.data[((b * oh + oy) * ow + ox) * t.c + ch]) - v))
                                }
                            }
                        }
                    }
                    XCTAssertLessThan(worst, 1e-5, "\(t) relu6 \(relu6) body \(body)")
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
