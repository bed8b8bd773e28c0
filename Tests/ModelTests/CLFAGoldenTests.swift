import Foundation
import XCTest
@testable import Model

/// The CLFA head against the numpy reference (tools/reference/clfa_reference.py), stage by stage,
/// on three random-weight heads: every sub-layer with a learned no-image token; the text-only
/// rule with a layer lacking textSelfAttn; and a 0-layer text-only head.
final class CLFAGoldenTests: XCTestCase {
    private let tolerance: Float = 1e-4

    func testFullHeadEveryStageMatchesReference() throws {
        let fixture = try CLFAFixture("full")
        XCTAssertEqual(fixture.head.layerCount, 3)
        XCTAssertEqual(fixture.head.textWidth, 32)
        XCTAssertEqual(fixture.head.imageWidth, 24)
        XCTAssertEqual(fixture.head.hiddenWidth, 64)
        XCTAssertEqual(fixture.head.noImageTokenCount, 3)
        XCTAssertEqual(fixture.head.config.attentionHeads, 4)
        try checkEveryStage(fixture)
    }

    func testTextOnlyRuleEveryStageMatchesReference() throws {
        let fixture = try CLFAFixture("text-only-rule")
        XCTAssertEqual(fixture.head.config.noImage, .textOnly)
        XCTAssertEqual(fixture.head.layerCount, 2)
        XCTAssertNil(fixture.head.layers[1].textSelfAttention)
        XCTAssertNotNil(fixture.head.layers[1].imageCrossAttention)
        XCTAssertNil(fixture.head.noImageTokenCount)
        XCTAssertEqual(fixture.head.labelCount, 3)
        try checkEveryStage(fixture)
    }

    func testZeroLayerTextOnlyHeadEveryStageMatchesReference() throws {
        let fixture = try CLFAFixture("text-only-head")
        XCTAssertEqual(fixture.head.layerCount, 0)
        XCTAssertNil(fixture.head.imageWidth)
        // Its config.json holds only text_length: the rest are the defaults.
        XCTAssertEqual(fixture.head.config, CLFAConfig(textLength: 16))
        try checkEveryStage(fixture)
        // A text-only head ignores images, whatever hasImage says.
        let plain = try fixture.head.forward(text: fixture.text, textLengths: fixture.meta.lengths, image: nil,
                                             hasImage: [Bool](repeating: false, count: fixture.batch))
        let flagged = try fixture.head.forward(text: fixture.text, textLengths: fixture.meta.lengths, image: nil,
                                               hasImage: [Bool](repeating: true, count: fixture.batch))
        XCTAssertEqual(plain.logits, flagged.logits)
    }

    /// One padded batch of all posts (padding and the image rows of posts without an image hold
    /// random values): every stage of every post within 1e-4 of the reference.
    private func checkEveryStage(_ fixture: CLFAFixture, file: StaticString = #filePath, line: UInt = #line) throws {
        let output = try fixture.forwardBatch()
        let h = fixture.head.hiddenWidth
        XCTAssertEqual(fixture.head.layerCount, fixture.meta.layers, file: file, line: line)
        XCTAssertEqual(fixture.head.labelCount, fixture.meta.labels, file: file, line: line)
        XCTAssertEqual(output.logits.shape, [fixture.batch, fixture.meta.labels], file: file, line: line)
        var worst: Float = 0, compared = 0
        for b in 0..<fixture.batch {
            let n = fixture.meta.lengths[b]
            for stage in fixture.meta.stages[b] {
                let want = try fixture.expected.tensor("p\(b).\(stage)")
                let got: [Float]
                switch stage {
                case "logits": got = output.logits.row(b)
                case "probabilities": got = output.probabilities.row(b)
                case "pooled": got = try XCTUnwrap(output.stages["pooled"], file: file, line: line).row(b)
                case "image": got = try XCTUnwrap(output.stages["image"], file: file, line: line).block(b, rows: 0..<want.shape[0])
                default:
                    XCTAssertEqual(want.shape, [n, h], stage, file: file, line: line)
                    got = try XCTUnwrap(output.stages[stage], "no stage \(stage)", file: file, line: line).block(b, rows: 0..<n)
                }
                let diff = maxAbsDifference(got, want.data)
                worst = max(worst, diff)
                compared += 1
                XCTAssertLessThan(diff, tolerance, "post \(b) stage \(stage)", file: file, line: line)
            }
        }
        // The reference has a stage for every layer, so none of the head's went unchecked.
        let layerStages = Set(fixture.meta.stages.joined().filter { $0.hasPrefix("layer.") })
        XCTAssertEqual(layerStages.count, fixture.head.layerCount, file: file, line: line)
        print("clfa/\(fixture.directory.lastPathComponent): \(compared) stages, max abs difference \(worst)")
    }

    /// A batch mixing posts with and without an image, padded to one length, gives each post what
    /// it gets alone (unpadded, B = 1).
    func testMixedBatchEqualsPostsOneByOne() throws {
        for name in CLFAFixture.names {
            let fixture = try CLFAFixture(name)
            XCTAssertTrue(fixture.meta.has_image.contains(true) && fixture.meta.has_image.contains(false))
            XCTAssertTrue(fixture.meta.lengths.contains { $0 < fixture.paddedLength })
            let batch = try fixture.forwardBatch()
            for b in 0..<fixture.batch {
                let alone = try fixture.forwardAlone(b)
                let n = fixture.meta.lengths[b]
                XCTAssertLessThan(maxAbsDifference(batch.logits.row(b), alone.logits.row(0)), 1e-5, "\(name) post \(b)")
                for i in 0..<fixture.head.layerCount {
                    let together = try XCTUnwrap(batch.stages["layer.\(i)"]).block(b, rows: 0..<n)
                    let single = try XCTUnwrap(alone.stages["layer.\(i)"]).block(0, rows: 0..<n)
                    XCTAssertLessThan(maxAbsDifference(together, single), 1e-5, "\(name) post \(b) layer \(i)")
                }
            }
        }
    }

    /// Under the learned-token rule a post without an image attends to the token, so its result
    /// differs from the text-only rule's; a batch with no image at all needs no image tensor.
    func testNoImageRulesDiffer() throws {
        let fixture = try CLFAFixture("full")
        let lengths = fixture.meta.lengths, none = [Bool](repeating: false, count: fixture.batch)
        let learned = try fixture.head.forward(text: fixture.text, textLengths: lengths, image: nil, hasImage: none)
        let dir = try temporaryDirectory(self)
        try writeCLFAVariant("full", to: dir, configChanges: ["no_image": "text_only"]) { _ in }
        let textOnly = try CLFAHead(directory: dir)
        let skipped = try textOnly.forward(text: fixture.text, textLengths: lengths, image: nil, hasImage: none)
        XCTAssertGreaterThan(maxAbsDifference(learned.logits.data, skipped.logits.data), 1e-3)
        // With every post's image present the rule does not matter.
        let all = [Bool](repeating: true, count: fixture.batch)
        let a = try fixture.head.forward(text: fixture.text, textLengths: lengths, image: fixture.image, hasImage: all)
        let b = try textOnly.forward(text: fixture.text, textLengths: lengths, image: fixture.image, hasImage: all)
        XCTAssertLessThan(maxAbsDifference(a.logits.data, b.logits.data), 1e-6)
    }

    func testForwardRejectsInputsOfWrongShape() throws {
        let fixture = try CLFAFixture("full")
        let lengths = fixture.meta.lengths, flags = fixture.meta.has_image
        // A post marked as having an image, but no image tensor.
        XCTAssertThrowsError(try fixture.head.forward(text: fixture.text, textLengths: lengths, image: nil, hasImage: flags))
        // Image states of another width.
        XCTAssertThrowsError(try fixture.head.forward(text: fixture.text, textLengths: lengths,
                                                      image: try rampTensor([fixture.batch, 5, 23]), hasImage: flags))
        // Text states of another width, a length past L, one flag missing.
        XCTAssertThrowsError(try fixture.head.forward(text: try rampTensor([fixture.batch, 16, 31]), textLengths: lengths,
                                                      image: fixture.image, hasImage: flags))
        XCTAssertThrowsError(try fixture.head.forward(text: fixture.text, textLengths: [17] + lengths.dropFirst(),
                                                      image: fixture.image, hasImage: flags))
        XCTAssertThrowsError(try fixture.head.forward(text: fixture.text, textLengths: lengths,
                                                      image: fixture.image, hasImage: Array(flags.dropLast())))
        // An empty batch is not an error.
        let empty = try fixture.head.forward(text: Tensor(zeros: [0, 16, 32]), textLengths: [], image: nil, hasImage: [])
        XCTAssertEqual(empty.probabilities.shape, [0, 2])
    }
}
