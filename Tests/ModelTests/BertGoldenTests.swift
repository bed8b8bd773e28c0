import Foundation
import XCTest
@testable import Model

/// The encoder against the numpy reference: every stage of the tiny random-weight fixture, and the
/// real all-MiniLM-L6-v2 weights on 100 sentences.
final class BertGoldenTests: XCTestCase {
    private func checkTinyBert(directory: URL, threads: Int = 1, file: StaticString = #filePath, line: UInt = #line) throws {
        let golden = try GoldenTexts.load(TestPaths.tinyBert.appendingPathComponent("expected.json"))
        let expected = try SafeTensorsFile(path: TestPaths.tinyBert.appendingPathComponent("expected.safetensors").path)
        let encoder = try BertEncoder(directory: directory)
        XCTAssertEqual(encoder.layerCount, 2, file: file, line: line)
        // One padded batch of all texts: padding must not change any post's result.
        let output = try encoder.forward(golden.ids, keepStages: true, threads: threads)
        XCTAssertEqual(output.stages.count, 3, file: file, line: line)
        let d = encoder.hiddenSize
        var worst: Float = 0
        for i in golden.ids.indices {
            let n = golden.ids[i].count
            for (s, stage) in output.stages.enumerated() {
                let name = s == 0 ? "t\(i).embeddings" : "t\(i).layer\(s - 1)"
                let got = Array(stage.data[(i * output.paddedLength * d)..<((i * output.paddedLength + n) * d)])
                let diff = maxAbsDifference(got, try expected.tensor(name, expectedShape: [n, d]).data)
                worst = max(worst, diff)
                XCTAssertLessThan(diff, 1e-4, "\(name)", file: file, line: line)
            }
            let sentence = Array(output.sentenceVectors.data[(i * d)..<((i + 1) * d)])
            XCTAssertLessThan(maxAbsDifference(sentence, try expected.tensor("t\(i).sentence").data), 1e-4, file: file, line: line)
            XCTAssertEqual(output.tokenStates(ofPost: i).shape, [n, d], file: file, line: line)
        }
        print("tiny-bert max abs difference over all stages: \(worst)")
    }

    func testTinyBertEveryStageMatchesReference() throws {
        try checkTinyBert(directory: TestPaths.tinyBert)
    }

    /// Every product and kernel split into three slices (an uneven split) gives the same stages.
    func testTinyBertSlicedAcrossThreadsMatchesReference() throws {
        try checkTinyBert(directory: TestPaths.tinyBert, threads: 3)
    }

    /// A batch long enough to be split into one group of posts per thread: every post still
    /// matches the reference, and the groups split the rows evenly.
    func testTinyBertSplitIntoGroupsMatchesReference() throws {
        let golden = try GoldenTexts.load(TestPaths.tinyBert.appendingPathComponent("expected.json"))
        let expected = try SafeTensorsFile(path: TestPaths.tinyBert.appendingPathComponent("expected.safetensors").path)
        let encoder = try BertEncoder(directory: TestPaths.tinyBert)
        let copies = 4 * BertEncoder.minimumRowsPerThread / golden.ids.map(\.count).reduce(0, +) + 1
        let ids = Array([[[Int]]](repeating: golden.ids, count: copies).joined())
        let lengths = ids.map(\.count)
        XCTAssertGreaterThan(lengths.reduce(0, +), 2 * BertEncoder.minimumRowsPerThread, "enough rows to split")
        let groups = BertEncoder.balancedGroups(lengths, parts: 2)
        XCTAssertEqual(groups.count, 2)
        XCTAssertEqual(groups.first?.lowerBound, 0)
        XCTAssertEqual(groups.last?.upperBound, ids.count)
        let rows = groups.map { lengths[$0].reduce(0, +) }
        XCTAssertLessThanOrEqual(abs(rows[0] - rows[1]), lengths.max() ?? 0)

        let output = try encoder.forward(ids, threads: 2)
        let d = encoder.hiddenSize
        for (b, post) in ids.enumerated() {
            let i = b % golden.ids.count
            XCTAssertEqual(post, golden.ids[i])
            let diff = maxAbsDifference(output.tokenStates(ofPost: b).data,
                                        try expected.tensor("t\(i).layer1", expectedShape: [post.count, d]).data)
            XCTAssertLessThan(diff, 1e-4, "post \(b) (text \(i))")
        }
    }

    func testBalancedGroupsCoverEveryPostOnce() {
        for lengths in [[5], [1, 1], [64, 1, 1, 1], [3, 9, 27, 81, 2, 2, 2], Array(repeating: 7, count: 33)] {
            for parts in 1...4 where parts <= lengths.count {
                let groups = BertEncoder.balancedGroups(lengths, parts: parts)
                XCTAssertEqual(groups.count, parts, "\(lengths) in \(parts)")
                XCTAssertEqual(groups.map(\.count).reduce(0, +), lengths.count)
                XCTAssertTrue(groups.allSatisfy { !$0.isEmpty })
                XCTAssertTrue(zip(groups, groups.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
            }
        }
    }

    func testBertPrefixAndGammaBetaNames() throws {
        let dir = try temporaryDirectory(self)
        try writeTinyBertVariant(to: dir, rename: { name in
            "bert." + name.replacingOccurrences(of: "LayerNorm.weight", with: "LayerNorm.gamma")
                .replacingOccurrences(of: "LayerNorm.bias", with: "LayerNorm.beta")
        })
        let file = try SafeTensorsFile(path: dir.appendingPathComponent("model.safetensors").path)
        XCTAssertTrue(file.contains("bert.encoder.layer.0.output.LayerNorm.gamma"))
        try checkTinyBert(directory: dir)
    }

    func testTextEncoderTokenizesAndPools() throws {
        let golden = try GoldenTexts.load(TestPaths.tinyBert.appendingPathComponent("expected.json"))
        let expected = try SafeTensorsFile(path: TestPaths.tinyBert.appendingPathComponent("expected.safetensors").path)
        let encoder = try BertTextEncoder(directory: TestPaths.tinyBert)
        let results = try encoder.encode(golden.texts, maxLength: golden.max_length)
        for (i, result) in results.enumerated() {
            XCTAssertEqual(result.tokens, golden.ids[i])
            XCTAssertLessThan(maxAbsDifference(result.embedding, try expected.tensor("t\(i).sentence").data), 1e-4)
        }
        XCTAssertEqual(try encoder.encode([], maxLength: 8), [])
    }

    /// all-MiniLM-L6-v2 on 100 sentences: token states within 1e-4 of the numpy reference (float64),
    /// sentence vectors with cosine >= 0.9999. The forward runs split over two threads (the bench's
    /// setting; 16 posts take the row-sliced products), the encode call on one.
    func testMiniLMMatchesReference() throws {
        let json = TestPaths.golden.appendingPathComponent("minilm-reference.json")
        let tensors = TestPaths.golden.appendingPathComponent("minilm-reference.safetensors")
        try requireGeneratedFiles(json, tensors, TestPaths.miniLM.appendingPathComponent("model.safetensors"))
        let golden = try GoldenTexts.load(json)
        let expected = try SafeTensorsFile(path: tensors.path)
        let encoder = try BertTextEncoder(directory: TestPaths.miniLM)
        XCTAssertEqual(golden.texts.count, 100)
        var worst: Float = 0, worstCosine = 1.0
        let batchSize = 16
        for start in stride(from: 0, to: golden.texts.count, by: batchSize) {
            let range = start..<min(start + batchSize, golden.texts.count)
            // Swift's own tokenizer must give the reference's ids too.
            let results = try encoder.encode(Array(golden.texts[range]), maxLength: golden.max_length)
            let output = try encoder.encoder.forward(Array(golden.ids[range]), threads: 2)
            for (k, i) in range.enumerated() {
                XCTAssertEqual(results[k].tokens, golden.ids[i], "sentence \(i)")
                let n = golden.ids[i].count
                let states = output.tokenStates(ofPost: k).data
                let diff = maxAbsDifference(states, try expected.tensor("s\(i).tokens", expectedShape: [n, 384]).data)
                worst = max(worst, diff)
                XCTAssertLessThan(diff, 1e-4, "sentence \(i): \(golden.texts[i].prefix(60))")
                let c = cosine(results[k].embedding, try expected.tensor("s\(i).sentence").data)
                worstCosine = min(worstCosine, c)
                XCTAssertGreaterThanOrEqual(c, 0.9999, "sentence \(i)")
            }
        }
        print("all-MiniLM-L6-v2: max abs token-state difference \(worst), min sentence cosine \(worstCosine)")
    }
}
