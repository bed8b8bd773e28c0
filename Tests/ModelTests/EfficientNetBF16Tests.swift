import Foundation
import XCTest
@testable import Model

extension TestPaths {
    /// Written by tools/golden/make_efficientnet_bf16_golden.py (scripts/setup-models.sh).
    static let efficientNetBF16Reference = golden.appendingPathComponent("efficientnet-lite0-bf16")
}

/// EfficientNet-Lite0 with bf16 1x1 convs (issue 29) against the numpy reference of the same
/// arithmetic (tools/reference/efficientnet_reference.py with `bf16_min_inputs`), stage by stage,
/// on every bf16 body this CPU has. How far bf16 moves the labels on many images is
/// `BF16AccuracyTests`' job.
final class EfficientNetBF16Tests: XCTestCase {
    private struct Index: Decodable {
        let bf16_min_inputs: [String: Int]
        let photos: [String]
        let stages_of: String
        let stage_shapes: [[Int]]
    }

    private func index() throws -> Index {
        let url = TestPaths.efficientNetBF16Reference.appendingPathComponent("index.json")
        try requireGeneratedFiles(TestPaths.efficientNetLite0.appendingPathComponent("model.safetensors"),
                                  TestPaths.efficientNetReference.appendingPathComponent("index.json"), url)
        return try JSONDecoder().decode(Index.self, from: Data(contentsOf: url))
    }

    /// bf16 in the expand and head convs with at least 32 inputs (a full bf16 tile row) and in the
    /// project convs with at least 240 (blocks 4 to 15); fp32 in the others (in Lite0 the expands
    /// of blocks 1, with 16 inputs, 2 and 3, with 24; the projects of blocks 0 to 3); fp32
    /// everywhere when the encoder runs fp32.
    func testOneByOneConvsTakeBF16FromTheirRolesMinimum() throws {
        let reference = try index()
        let rule = Dictionary(uniqueKeysWithValues: EfficientNetLite.bf16MinimumInputs.map { ($0.key.rawValue, $0.value) })
        XCTAssertEqual(reference.bf16_min_inputs, rule, "the golden data was made for another rule: rerun scripts/setup-models.sh")
        XCTAssertEqual(rule, ["expand": 32, "project": 240, "head": 32])
        let bf16 = try EfficientNetLite(directory: TestPaths.efficientNetLite0, precision: .bf16)
        for (i, block) in bf16.blocks.enumerated() {
            if let expand = block.expand {
                XCTAssertEqual(expand.precision, expand.inChannels >= 32 ? .bf16 : .fp32, "block \(i) expand, \(expand.inChannels) inputs")
            }
            XCTAssertEqual(block.project.precision, i >= 4 ? .bf16 : .fp32, "block \(i) project, \(block.project.inChannels) inputs")
        }
        XCTAssertEqual(bf16.head.precision, .bf16)
        XCTAssertEqual(bf16.blocks.compactMap(\.expand).filter { $0.precision == .bf16 }.count, 12)
        XCTAssertEqual(bf16.blocks.map(\.project).filter { $0.precision == .bf16 }.count, 12)
        let fp32 = try EfficientNetLite(directory: TestPaths.efficientNetLite0)
        XCTAssertEqual(Set(fp32.pointwisePrecisions), [.fp32])
    }

    /// Every stage of one photo, then the logits of four photos in one batch, against the bf16
    /// reference, on each bf16 body. Each stage is also compared with the fp32 engine: up to the
    /// first block with a bf16 conv the two engines must agree exactly; from there the bf16
    /// reference must be nearer to the bf16 engine than the fp32 engine is, so a test that passed
    /// because no rounding ran would fail. The bounds are loose against fp32's (1e-3) because an
    /// activation that the engine's fp32 sums and the reference's exact ones put on either side of
    /// a bf16 rounding boundary moves by a bf16 step (1/256), and that carries through the layers
    /// after it: the largest such moves in a stage of 60,000 values reached about 1% of its largest
    /// value (the head), while the pooled vectors stay within a cosine of 0.99999.
    func testEveryStageMatchesReferenceOnEveryBF16Body() throws {
        let reference = try index()
        let size = 224, values = 3 * size * size
        let inputs = try reference.photos.map {
            try readFloats(TestPaths.efficientNetReference.appendingPathComponent("\($0).input.f32"))
        }
        XCTAssertEqual(inputs.map(\.count), [Int](repeating: values, count: inputs.count))
        let first = try XCTUnwrap(reference.photos.firstIndex(of: reference.stages_of))
        let fp32 = try EfficientNetLite(directory: TestPaths.efficientNetLite0)
        let bf16 = try EfficientNetLite(directory: TestPaths.efficientNetLite0, precision: .bf16)
        let fp32Stages = try fp32.forward(inputs[first], batch: 1, keepStages: true).stages
        let wantStages = try reference.stage_shapes.indices.map { n in
            channelsLast(try readFloats(TestPaths.efficientNetBF16Reference.appendingPathComponent(String(format: "%@.stage%02d.f32", reference.stages_of, n))),
                         channels: reference.stage_shapes[n][0])
        }
        // Stage 0 is the stem, stage n the output of block n - 1, the last the head.
        let firstRounded = 1 + (bf16.blocks.firstIndex { $0.expand?.precision == .bf16 || $0.project.precision == .bf16 } ?? bf16.blocks.count)
        XCTAssertGreaterThan(firstRounded, 1)
        try forEachBF16Body { body in
            let got = try bf16.forward(inputs[first], batch: 1, keepStages: true)
            XCTAssertEqual(got.stages.count, wantStages.count, body)
            for (n, (stage, want)) in zip(got.stages, wantStages).enumerated() {
                let scale = want.map(abs).max() ?? 1
                let error = maxAbsDifference(stage.data, want) / scale
                let fp32Error = maxAbsDifference(fp32Stages[n].data, want) / scale
                print("bf16 stage \(n) (\(body)): max abs difference / max |value| against the bf16 reference \(error), fp32 engine's \(fp32Error)")
                XCTAssertLessThan(error, 3e-2, "stage \(n), body \(body)")
                if n < firstRounded {
                    XCTAssertEqual(stage.data, fp32Stages[n].data, "stage \(n), body \(body): no bf16 conv yet")
                } else {
                    XCTAssertLessThan(error, fp32Error, "stage \(n), body \(body): no nearer to the bf16 reference than fp32 is")
                }
            }
            let batched = try bf16.encode(inputs.flatMap { $0 }, batch: inputs.count)
            let logits = try XCTUnwrap(batched.logits)
            for (i, photo) in reference.photos.enumerated() {
                let want = try readFloats(TestPaths.efficientNetBF16Reference.appendingPathComponent("\(photo).logits.f32"))
                let wantPooled = try readFloats(TestPaths.efficientNetBF16Reference.appendingPathComponent("\(photo).pooled.f32"))
                let gotLogits = Array(logits.data[(i * 1000)..<((i + 1) * 1000)])
                let gotPooled = Array(batched.pooled.data[(i * 1280)..<((i + 1) * 1280)])
                print("bf16 \(photo) (\(body)): logits max abs difference \(maxAbsDifference(gotLogits, want)), pooled cosine \(cosine(gotPooled, wantPooled))")
                XCTAssertLessThan(maxAbsDifference(gotLogits, want), 5e-2, "\(photo), body \(body)")
                XCTAssertGreaterThan(cosine(gotPooled, wantPooled), 0.9999, "\(photo), body \(body)")
                XCTAssertEqual(argmax(gotLogits[...]), argmax(want[...]), "\(photo), body \(body)")
            }
        }
    }
}
