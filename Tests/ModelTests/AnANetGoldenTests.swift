import Foundation
import XCTest
@testable import Model

/// The AnANet head and its word features against the numpy reference (tools/reference/
/// ananet_reference.py via tools/golden/make_ananet_golden.py): every stage of five posts within
/// 1e-4, and load errors that name the broken tensor.
final class AnANetGoldenTests: XCTestCase {
    private let fixture = TestPaths.fixtures.appendingPathComponent("ananet")

    private struct Inputs: Decodable {
        struct Post: Decodable {
            let text: String
            let ids: [Int]
            let words: [[WordSpanTests.WordField]]
        }
        let max_length: Int
        let max_words: Int
        let posts: [Post]
    }

    private func inputs() throws -> (Inputs, SafeTensorsFile, SafeTensorsFile) {
        let json = try JSONDecoder().decode(Inputs.self, from: Data(contentsOf: fixture.appendingPathComponent("inputs.json")))
        return (json, try SafeTensorsFile(path: fixture.appendingPathComponent("inputs.safetensors").path),
                try SafeTensorsFile(path: fixture.appendingPathComponent("expected.safetensors").path))
    }

    /// Tokenizer words and e_j = [glove ; mean of piece states] for each post.
    func testWordFeaturesMatchReference() throws {
        let (json, tensors, expected) = try inputs()
        let tokenizer = try WordPieceTokenizer(vocabularyURL: TestPaths.tinyBert.appendingPathComponent("vocab.txt"))
        let glove = try WordVectors(directory: fixture.appendingPathComponent("glove"))
        XCTAssertEqual(json.posts.count, 5)
        for (b, post) in json.posts.enumerated() {
            let tokenized = tokenizer.encodeWords(post.text, maxLength: json.max_length)
            XCTAssertEqual(tokenized, TokenizedWords(ids: post.ids, words: WordSpanTests.words(post.words)), post.text)
            let states = try tensors.tensor("p\(b).token_states", expectedShape: [post.ids.count, 16])
            let e = try WordFeatures.rows(words: tokenized.words, tokenStates: states, vectors: glove, maxWords: json.max_words)
            let reference = try expected.tensor("p\(b).e")
            XCTAssertEqual(e.shape, reference.shape, "post \(b)")
            XCTAssertLessThan(maxAbsDifference(e.data, reference.data), 1e-5, "post \(b)")
        }
        // Post 3 has 17 words: only the first N_max reach the head.
        XCTAssertEqual(try expected.tensor("p3.e").shape, [12, 24])
        // A piece range past the states is an error, not a crash.
        let states = try tensors.tensor("p1.token_states")
        XCTAssertThrowsError(try WordFeatures.rows(words: [.init(text: "cat", pieces: 1..<99)], tokenStates: states,
                                                   vectors: glove, maxWords: 12))
    }

    private func head() throws -> AnANetHead {
        try AnANetHead(directory: fixture)
    }

    private func words(_ expected: SafeTensorsFile, count: Int) throws -> [Tensor] {
        try (0..<count).map { b in
            let e = try expected.tensor("p\(b).e")
            return e.count == 0 ? Tensor(zeros: [0, 24]) : e
        }
    }

    func testEveryStageMatchesReference() throws {
        let (json, tensors, expected) = try inputs()
        let head = try head()
        XCTAssertEqual(head.maxWords, 12)
        XCTAssertEqual(head.regionCount, 5)
        XCTAssertEqual(head.regionWidth, 24)
        XCTAssertEqual(head.wordWidth, 24)
        XCTAssertEqual(head.width, 32)
        XCTAssertEqual(head.labelCount, 3)
        XCTAssertEqual(head.config, AnANetConfig(lambda: 0.7, eta: 1.3, regionCount: 5))
        let batch = json.posts.count
        // All posts in one batch: 0, 10, 12, 12 (of 17) and 9 words.
        let output = try head.forward(regions: try tensors.tensor("regions", expectedShape: [batch, 5, 24]),
                                      words: try words(expected, count: batch), keepStages: true)
        XCTAssertEqual(output.stages.count, batch)
        var worst: Float = 0
        func check(_ got: [Float], _ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let reference = try expected.tensor(name)
            XCTAssertEqual(got.count, reference.count, name, file: file, line: line)
            guard got.count == reference.count else { return }
            let diff = got.isEmpty ? 0 : maxAbsDifference(got, reference.data)
            worst = max(worst, diff)
            XCTAssertLessThan(diff, 1e-4, name, file: file, line: line)
        }
        let c = head.labelCount
        for (b, s) in output.stages.enumerated() {
            let p = "p\(b)."
            try check(s.regions.data, p + "V")
            try check(s.forwardStates.data, p + "gru_forward")
            try check(s.backwardStates.data, p + "gru_backward")
            try check(s.words.data, p + "T")
            try check(s.imageVector, p + "f_img")
            try check(s.textVector, p + "f_txt")
            try check(s.global, p + "r_g")
            try check(s.scores.data, p + "S")
            try check(s.attendedRegions.data, p + "V_hat")
            try check(s.attendedWords.data, p + "T_hat")
            try check(s.regionSimilarity, p + "v")
            try check(s.wordSimilarity, p + "t")
            try check(s.local, p + "r_l")
            let row = (b * c)..<((b + 1) * c)
            try check(Array(output.associationLogits.data[row]), p + "association_logits")
            try check(Array(output.alignmentLogits.data[row]), p + "alignment_logits")
            try check(Array(output.logits.data[row]), p + "logits")
            try check(Array(output.probabilities.data[row]), p + "probabilities")
        }
        XCTAssertEqual(output.stages[0].textVector, [Float](repeating: 0, count: 32), "no words: f_txt = 0")
        XCTAssertEqual(output.stages[0].local.prefix(12).allSatisfy { $0 == 0 }, true, "no words: t = 0")
        print("AnANet max abs difference over all stages: \(worst)")
    }

    /// A post's result does not depend on the others in its batch, and stages are optional.
    func testBatchingDoesNotChangeResults() throws {
        let (json, tensors, expected) = try inputs()
        let head = try head()
        let regions = try tensors.tensor("regions")
        let all = try words(expected, count: json.posts.count)
        let together = try head.forward(regions: regions, words: all)
        XCTAssertTrue(together.stages.isEmpty)
        let c = head.labelCount
        for b in all.indices {
            let one = try regions.rows((b * 5)..<((b + 1) * 5)).reshaped([1, 5, 24])
            let alone = try head.forward(regions: one, words: [all[b]])
            XCTAssertLessThan(maxAbsDifference(alone.logits.data, Array(together.logits.data[(b * c)..<((b + 1) * c)])), 1e-6)
        }
        let empty = try head.forward(regions: Tensor(zeros: [0, 5, 24]), words: [])
        XCTAssertEqual(empty.logits.shape, [0, 3])
    }

    func testForwardRejectsBadInputs() throws {
        let head = try head()
        let regions = Tensor(zeros: [1, 5, 24])
        XCTAssertThrowsError(try head.forward(regions: regions, words: [Tensor(zeros: [13, 24])]))  // > N_max
        XCTAssertThrowsError(try head.forward(regions: regions, words: [Tensor(zeros: [3, 23])]))   // wrong width
        XCTAssertThrowsError(try head.forward(regions: Tensor(zeros: [1, 4, 24]), words: [Tensor(zeros: [3, 24])]))
        XCTAssertThrowsError(try head.forward(regions: regions, words: []))                          // batch mismatch
    }

    /// Writes the fixture's weights with `edit` applied (return nil to drop a tensor) and loads them.
    private func loadVariant(_ edit: (String, Tensor) -> Tensor?) throws -> AnANetHead {
        let dir = try temporaryDirectory(self)
        let source = try SafeTensorsFile(path: fixture.appendingPathComponent("model.safetensors").path)
        var writer = SafeTensorsWriter()
        for name in source.names {
            if let tensor = edit(name, try source.tensor(name)) { writer.add(name, tensor) }
        }
        try writer.write(to: dir.appendingPathComponent("model.safetensors"))
        try FileManager.default.copyItem(at: fixture.appendingPathComponent("config.json"), to: dir.appendingPathComponent("config.json"))
        return try AnANetHead(directory: dir)
    }

    func testBrokenWeightsNameTheTensor() throws {
        for missing in ["region_proj.bias", "gru.weight_hh_l0_reverse", "gru.bias_ih_l0", "association.proj.weight",
                        "association.classifier.weight", "alignment.classifier.bias"] {
            XCTAssertThrowsError(try loadVariant { name, t in name == missing ? nil : t }, missing) { error in
                guard case let .weights(.missingTensor(_, tensor))? = error as? ModelLoadError else { return XCTFail("\(error)") }
                XCTAssertEqual(tensor, missing)
            }
        }
        let wrongShapes: [String: [Int]] = [
            "gru.weight_ih_l0_reverse": [48, 23], "gru.weight_hh_l0": [48, 15], "gru.bias_hh_l0_reverse": [47],
            "association.proj.weight": [200, 31], "association.classifier.weight": [3, 399],
            "alignment.classifier.weight": [2, 17], "region_proj.bias": [31],
        ]
        for (broken, shape) in wrongShapes {
            XCTAssertThrowsError(try loadVariant { name, t in name == broken ? Tensor(zeros: shape) : t }, broken) { error in
                guard case let .weights(.shapeMismatch(_, tensor, _, found))? = error as? ModelLoadError else { return XCTFail("\(broken): \(error)") }
                XCTAssertEqual(tensor, broken)
                XCTAssertEqual(found, shape)
            }
        }
        // An odd d cannot split into two GRU directions; too narrow an alignment classifier leaves no word slots.
        XCTAssertThrowsError(try loadVariant { name, t in
            name.hasPrefix("region_proj") ? Tensor(zeros: name.hasSuffix("weight") ? [31, 24] : [31]) : t
        }) { error in XCTAssertTrue("\(error)".contains("region_proj.weight"), "\(error)") }
        XCTAssertThrowsError(try loadVariant { name, t in
            name == "alignment.classifier.weight" ? Tensor(zeros: [3, 5]) : t
        }) { error in XCTAssertTrue("\(error)".contains("alignment.classifier.weight"), "\(error)") }
    }

    func testConfigDefaultsAndErrors() throws {
        let dir = try temporaryDirectory(self)
        let url = dir.appendingPathComponent("config.json")
        try #"{"region_count": 49}"#.write(to: url, atomically: true, encoding: .utf8)
        XCTAssertEqual(try AnANetConfig.load(from: url), AnANetConfig(lambda: 0.7, eta: 1.3, regionCount: 49))
        try #"{"lambda": 0.5}"#.write(to: url, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try AnANetConfig.load(from: url)) { error in
            guard case .invalidConfig? = error as? ModelLoadError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try AnANetHead(directory: dir.appendingPathComponent("absent"))) { error in
            guard case .missingFile? = error as? ModelLoadError else { return XCTFail("\(error)") }
        }
    }
}
