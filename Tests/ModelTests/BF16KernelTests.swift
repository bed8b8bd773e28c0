import CKernels
import Foundation
import XCTest
@testable import Model

/// The bf16 packed product (`pck_gemm_packed_bf16`) against the numpy reference
/// (tools/reference/bf16_reference.py, fixture from tools/golden/make_bf16_golden.py): the rounding,
/// products, a linear layer and the tiny BERT with bf16 products. The portable body runs on every
/// CPU; the AVX512-BF16 and AMX bodies where the CPU (and, for AMX, the OS) has them, and are then
/// also held to the portable one.
final class BF16KernelTests: XCTestCase {
    static let fixture = TestPaths.fixtures.appendingPathComponent("bf16")

    private func random(_ count: Int, seed: inout UInt64, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return (Float(Int64(bitPattern: seed >> 11) % 2000) / 1000 - 1) * scale
        }
    }

    /// Every float32 bit pattern of the fixture (ties both ways, carries into the exponent and to
    /// infinity, NaNs, subnormals, 200 random patterns) rounds to numpy's bf16 bits.
    func testRoundingMatchesNumpyReference() throws {
        struct Cases: Decodable { let float_bits: [UInt32]; let bf16_bits: [UInt16] }
        let cases = try JSONDecoder().decode(Cases.self, from: Data(contentsOf: Self.fixture.appendingPathComponent("rounding.json")))
        XCTAssertGreaterThan(cases.float_bits.count, 200)
        for (bits, want) in zip(cases.float_bits, cases.bf16_bits) {
            let got = pck_float_to_bf16(Float(bitPattern: bits))
            XCTAssertEqual(got, want, String(format: "float bits %08x", bits))
        }
        XCTAssertEqual(pck_bf16_to_float(0x3F80), 1)
        XCTAssertEqual(pck_bf16_to_float(0xC0A0), -5)
    }

    /// The fixture's products (odd input counts, partial and odd last panels, uneven blocks of
    /// rows, bias, residual, ReLU6) within float32 summation error of the float64 reference, in
    /// every bf16 body; and far enough from the unrounded product that the rounding visibly ran.
    func testProductsMatchNumpyReference() throws {
        struct Case: Decodable { let rows: Int; let inputs: Int; let outputs: Int; let relu6: Bool; let residual: Bool }
        struct Cases: Decodable { let cases: [Case] }
        let cases = try JSONDecoder().decode(Cases.self, from: Data(contentsOf: Self.fixture.appendingPathComponent("products.json"))).cases
        let tensors = try SafeTensorsFile(path: Self.fixture.appendingPathComponent("products.safetensors").path)
        XCTAssertEqual(cases.count, 6)
        var worstRelative: Float = 0, largestRoundingEffect: Float = 0
        for (c, item) in cases.enumerated() {
            let x = try tensors.tensor("c\(c).x", expectedShape: [item.rows, item.inputs]).data
            let w = try tensors.tensor("c\(c).w", expectedShape: [item.outputs, item.inputs])
            let bias = try tensors.tensor("c\(c).bias", expectedShape: [item.outputs]).data
            let residual = item.residual ? try tensors.tensor("c\(c).residual", expectedShape: [item.rows, item.outputs]).data : nil
            let expected = try tensors.tensor("c\(c).expected", expectedShape: [item.rows, item.outputs]).data
            let packed = PackedWeightBF16.pack(w)
            // Panels of 16 channels, inputs padded to whole tiles of 32.
            XCTAssertEqual(packed.count, (item.outputs + 15) / 16 * 16 * ((item.inputs + 31) / 32 * 32))
            // The scale of each output's sum: float32 summation error is a few ulps of it.
            let scale = (0..<item.rows).map { r in (0..<item.inputs).reduce(Float(0)) { $0 + abs(x[r * item.inputs + $1]) } }.max() ?? 1
            try forEachBF16Body { body in
                let y = try product(x, rows: item.rows, inputs: item.inputs, packed: packed, bias: bias, residual: residual,
                                    outputs: item.outputs, relu6: item.relu6)
                let relative = maxAbsDifference(y, expected) / scale
                worstRelative = max(worstRelative, relative)
                XCTAssertLessThan(relative, 1e-6, "case \(c) (\(item.rows)x\(item.inputs)->\(item.outputs)), body \(body)")
            }
            // The float32 product of the unrounded values, for contrast.
            var plain = [Float](repeating: 0, count: item.rows * item.outputs)
            for r in 0..<item.rows {
                for n in 0..<item.outputs {
                    var v = Double(bias[n]) + Double(residual?[r * item.outputs + n] ?? 0)
                    for k in 0..<item.inputs { v += Double(x[r * item.inputs + k]) * Double(w.data[n * item.inputs + k]) }
                    plain[r * item.outputs + n] = Float(item.relu6 ? min(max(v, 0), 6) : v)
                }
            }
            largestRoundingEffect = max(largestRoundingEffect, maxAbsDifference(plain, expected) / scale)
        }
        XCTAssertGreaterThan(largestRoundingEffect, 100 * worstRelative, "the bf16 rounding must show against the fp32 product")
        print("bf16 products vs numpy: max error \(worstRelative) of sum |x|; bf16 rounding moved them by up to \(largestRoundingEffect)")
    }

    /// The AVX512-BF16 body against the portable one over shapes that reach every path of the
    /// former (blocks of 1 to 12 rows cut evenly, pairs of panels and an odd last one, partial
    /// panels, several groups of panels past L2 at 4100 inputs, an odd input count): the same
    /// sums (the instruction adds each pair's two exact products in the portable body's order).
    func testAVX512BF16BodyMatchesPortableBody() throws {
        guard Precision.cpuHasBF16 else {
            throw XCTSkip("this CPU has no AVX512-BF16 (or the OS does not enable AVX-512): only the portable bf16 body runs here, and testProductsMatchNumpyReference tests it")
        }
        pck_force_avx512_bf16(1)
        defer { pck_force_avx512_bf16(0) }
        let worst = try compareWithPortableBody(shapes: [(1, 384, 1152), (7, 21, 45), (12, 96, 40), (13, 1536, 384), (25, 383, 200),
                                                         (31, 4100, 48), (60, 24, 3), (2, 1, 16)], body: "avx512-bf16")
        print("AVX512-BF16 body vs portable body: max abs difference \(worst)")
    }

    /// The AMX body against the portable one over shapes that reach its paths (one and two tiles of
    /// rows, the last one part padding: 1, 16, 17, 33, 60 rows; pairs of panels, an odd last one,
    /// partial panels; inputs that end in a part tile: 1, 21, 383; several groups past L2 at 4096
    /// inputs): the same sums up to float32 rounding (the tile unit adds in its own order).
    func testAMXBodyMatchesPortableBody() throws {
        guard Precision.cpuHasAMX else {
            throw XCTSkip("no AMX-BF16 here (the CPU lacks it or the OS does not give this process the tile state): the AMX body cannot run")
        }
        XCTAssertEqual(KernelBodies.bf16, "amx-bf16")
        let worst = try compareWithPortableBody(shapes: [(1, 384, 1152), (16, 32, 45), (17, 96, 40), (13, 1536, 384), (33, 384, 200),
                                                         (31, 4096, 48), (60, 64, 3), (7, 21, 45), (25, 383, 200), (2, 1, 16)],
                                                body: "amx-bf16")
        print("AMX body vs portable body: max abs difference \(worst)")
    }

    /// The largest difference between the bf16 body in use and the portable one over `shapes`
    /// (rows, inputs, outputs), with and without residual and ReLU6, each held to float32 rounding.
    private func compareWithPortableBody(shapes: [(Int, Int, Int)], body: String) throws -> Float {
        var seed: UInt64 = 41
        var worst: Float = 0
        for (rows, inputs, outputs) in shapes {
            let w = try Tensor(shape: [outputs, inputs], data: random(outputs * inputs, seed: &seed, scale: 0.3))
            let x = random(rows * inputs, seed: &seed, scale: 3)
            let bias = random(outputs, seed: &seed)
            let residual = random(rows * outputs, seed: &seed)
            let packed = PackedWeightBF16.pack(w)
            for (useResidual, relu6) in [(false, false), (true, false), (true, true)] {
                let fast = try product(x, rows: rows, inputs: inputs, packed: packed, bias: bias,
                                       residual: useResidual ? residual : nil, outputs: outputs, relu6: relu6)
                pck_force_portable_bf16(1)
                let portable = try product(x, rows: rows, inputs: inputs, packed: packed, bias: bias,
                                           residual: useResidual ? residual : nil, outputs: outputs, relu6: relu6)
                pck_force_portable_bf16(0)
                let diff = maxAbsDifference(fast, portable)
                worst = max(worst, diff)
                // AVX512-BF16: equal here; a margin of float32 rounding for a CPU that orders the
                // pair's sums otherwise, and for the tile unit's order.
                XCTAssertLessThan(diff, 1e-6 * Float(inputs), "\(body) \(rows)x\(inputs)->\(outputs) residual \(useResidual) relu6 \(relu6)")
            }
        }
        return worst
    }

    /// A linear layer packed to bf16 keeps one copy of its weight (the bf16 one) and gives the
    /// reference product with and without bias, on one slice and on three, in every bf16 body,
    /// whatever the row count (no sgemm fallback: there is no fp32 weight left).
    func testBF16LinearKeepsOneCopyAndMatchesReference() throws {
        var seed: UInt64 = 7
        let weight = try Tensor(shape: [40, 24], data: random(40 * 24, seed: &seed))
        let plain = try Linear(weight: weight, bias: random(40, seed: &seed))
        let layer = plain.packedForShortInputs(.bf16)
        XCTAssertEqual(layer.precision, .bf16)
        XCTAssertEqual(plain.packedForShortInputs().precision, .fp32)
        XCTAssertTrue(layer.weight.data.isEmpty, "a bf16 layer keeps no fp32 weight")
        XCTAssertEqual([layer.outFeatures, layer.inFeatures], [40, 24])
        let packed = PackedWeightBF16.pack(weight)
        for rows in [1, 13, 300] {
            let x = try Tensor(shape: [rows, 24], data: random(rows * 24, seed: &seed, scale: 2))
            for bias in [true, false] {
                // The portable body's product of the same packed weight: the layer must add nothing
                // and drop nothing (the AMX body sums in its own order: float32 rounding apart).
                pck_force_portable_bf16(1)
                let want = try product(x.data, rows: rows, inputs: 24, packed: packed, bias: bias ? plain.bias ?? [] : [Float](repeating: 0, count: 40),
                                       residual: nil, outputs: 40, relu6: false)
                pck_force_portable_bf16(0)
                try forEachBF16Body { body in
                    for threads in [1, 3] {
                        let got = try layer(x, threads: threads, includingBias: bias)
                        XCTAssertEqual(got.shape, [rows, 40])
                        let label = "\(rows) rows, \(threads) threads, bias \(bias), body \(body)"
                        if body == "amx-bf16" {
                            XCTAssertLessThan(maxAbsDifference(got.data, want), 1e-5, label)
                        } else {
                            XCTAssertEqual(got.data, want, label)
                        }
                    }
                }
                // And near the fp32 layer: bf16 keeps about 3 significant digits.
                let fp32 = try plain(x, includingBias: bias)
                XCTAssertLessThan(maxAbsDifference(want, fp32.data), 0.05)
            }
        }
        XCTAssertThrowsError(try layer(try Tensor(shape: [2, 4], data: [Float](repeating: 0, count: 8))))
    }

    /// The tiny BERT fixture with bf16 products against the numpy reference with bf16 products
    /// (every layer's output and the sentence vectors), in every bf16 body, one batch of all
    /// texts split over two threads; and far nearer to it than to the fp32 reference.
    ///
    /// Not as close as the fp32 golden tests: the engine rounds float32 activations to bf16, the
    /// reference float64 ones, and where a value sits within float32 error of a rounding
    /// boundary the two round it to neighbouring bf16 values, 1/256 apart. The rare flips
    /// propagate through the layers, so the bound is on the largest difference (a few flips'
    /// worth) and, tighter, on the mean.
    func testTinyBertWithBF16ProductsMatchesReference() throws {
        let golden = try GoldenTexts.load(TestPaths.tinyBert.appendingPathComponent("expected.json"))
        let expected = try SafeTensorsFile(path: Self.fixture.appendingPathComponent("tiny-bert-bf16.safetensors").path)
        let fp32Expected = try SafeTensorsFile(path: TestPaths.tinyBert.appendingPathComponent("expected.safetensors").path)
        let encoder = try BertEncoder(directory: TestPaths.tinyBert, precision: .bf16)
        XCTAssertEqual(encoder.precision, .bf16)
        var worst: Float = 0, sum = 0.0, sumFromFP32 = 0.0, count = 0
        try forEachBF16Body { body in
            let output = try encoder.forward(golden.ids, keepStages: true, threads: 2)
            let d = encoder.hiddenSize
            for i in golden.ids.indices {
                let n = golden.ids[i].count
                for layer in 0..<encoder.layerCount {
                    let stage = output.stages[layer + 1]
                    let got = Array(stage.data[(i * output.paddedLength * d)..<((i * output.paddedLength + n) * d)])
                    let want = try expected.tensor("t\(i).layer\(layer)", expectedShape: [n, d]).data
                    let fp32 = try fp32Expected.tensor("t\(i).layer\(layer)", expectedShape: [n, d]).data
                    let diff = maxAbsDifference(got, want)
                    worst = max(worst, diff)
                    XCTAssertLessThan(diff, 1e-2, "t\(i).layer\(layer), body \(body)")
                    for k in got.indices {
                        sum += Double(abs(got[k] - want[k]))
                        sumFromFP32 += Double(abs(got[k] - fp32[k]))
                    }
                    count += got.count
                }
                let sentence = Array(output.sentenceVectors.data[(i * d)..<((i + 1) * d)])
                XCTAssertLessThan(maxAbsDifference(sentence, try expected.tensor("t\(i).sentence").data), 1e-2, "t\(i), body \(body)")
            }
        }
        let mean = sum / Double(count), meanFromFP32 = sumFromFP32 / Double(count)
        XCTAssertLessThan(mean, 5e-5)
        XCTAssertGreaterThan(meanFromFP32, 100 * mean, "bf16 products must be far nearer the bf16 reference than the fp32 one")
        print("tiny-bert bf16: max abs difference from the bf16 reference \(worst), mean \(mean); mean from the fp32 reference \(meanFromFP32)")
    }

    /// The measured rate of vdpbf16ps against fp32 FMAs is a plausible ratio where the CPU has
    /// the instruction (the instruction's multiply-adds are 32 to the FMA's 16) and 0 elsewhere,
    /// and `auto` takes bf16 only where the products run on AMX tiles or the rate reaches
    /// `automaticBF16Rate`.
    func testAutoTakesBF16OnlyWhereTheInstructionIsFast() {
        let rate = Precision.bf16Rate
        print("vdpbf16ps multiply-adds per fp32 FMA multiply-add: \(rate); auto: \(Precision.automatic) (\(Precision.automaticReason))")
        if Precision.cpuHasBF16 {
            XCTAssertGreaterThan(rate, 0.2)
            XCTAssertLessThan(rate, 8)
        } else {
            XCTAssertEqual(rate, 0)
            XCTAssertEqual(Precision.automatic, .fp32)
        }
        XCTAssertEqual(Precision.automatic == .bf16,
                       Precision.cpuHasBF16 && (Precision.cpuHasAMX || rate >= Precision.automaticBF16Rate))
    }

    private func product(_ x: [Float], rows: Int, inputs: Int, packed: [UInt16], bias: [Float], residual: [Float]?,
                         outputs: Int, relu6: Bool) throws -> [Float] {
        var y = [Float](repeating: .nan, count: rows * outputs)
        x.withUnsafeBufferPointer { a in
            packed.withUnsafeBufferPointer { w in
                bias.withUnsafeBufferPointer { b in
                    (residual ?? []).withUnsafeBufferPointer { r in
                        y.withUnsafeMutableBufferPointer { out in
                            PackedWeightBF16.product(a.baseAddress!, rows: rows, inputs: inputs, packed: w.baseAddress!,
                                                     bias: b.baseAddress, residual: residual == nil ? nil : r.baseAddress,
                                                     outputs: outputs, relu6: relu6, into: out.baseAddress!)
                        }
                    }
                }
            }
        }
        return y
    }
}
