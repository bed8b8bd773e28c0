import Foundation
import XCTest
@testable import Model

/// The zero-shot correlation scorer against tools/reference/zero_shot_reference.py on the fixture
/// of tools/golden/make_zero_shot_golden.py: every feature, the calibrated probabilities, the
/// label and the evidence, for posts that name a class, relate to one only through word vectors,
/// have no content words, or whose image has one, two or many candidate classes.
final class ZeroShotGoldenTests: XCTestCase {
    struct Post: Decodable {
        let text: String
        let words: [String]
        let logits: [Float]
        let sentence: [Float]
        let features: [Double]
        let probabilities: [Double]
        let label: Int
        let concept: Int
        let concept_probability: Double
        let cosine: Double
        let named: [String]
        let related_word: String
    }

    struct Golden: Decodable {
        let features: [String]
        let posts: [Post]
    }

    static let folder = TestPaths.fixtures.appendingPathComponent("zero-shot")

    static func head() throws -> ZeroShotCorrelationHead {
        let config = try JSONDecoder().decode(ZeroShotConfig.self, from: Data(contentsOf: folder.appendingPathComponent("config.json")))
        let names = try String(contentsOf: folder.appendingPathComponent("classes.txt"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        try config.check(path: "config.json", labelCount: 3)
        let raw = try Data(contentsOf: folder.appendingPathComponent("concepts.f32"))
        let values = raw.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let concepts = try Tensor(shape: [names.count, values.count / names.count], data: values)
        let vectors = try WordVectors(directory: folder.appendingPathComponent("glove"))
        return try ZeroShotCorrelationHead(task: "correlation", labels: ["irrelevant", "implicit", "explicit"], config: config,
                                           classNames: names, concepts: concepts, wordVectors: vectors)
    }

    func testScorerMatchesReference() throws {
        let golden = try JSONDecoder().decode(Golden.self, from: Data(contentsOf: Self.folder.appendingPathComponent("posts.json")))
        XCTAssertEqual(golden.features, ZeroShotScorer.Feature.allCases.map(\.rawValue), "feature order")
        let head = try Self.head()
        XCTAssertEqual(Set(golden.posts.map(\.label)).count, 3, "the fixture should reach every label")
        for post in golden.posts {
            let score = head.scorer.score(logits: post.logits, sentence: post.sentence, words: post.words)
            for (i, expected) in post.features.enumerated() {
                XCTAssertEqual(Double(score.features[i]), expected, accuracy: 1e-4, "\(post.text): \(golden.features[i])")
            }
            for (k, expected) in post.probabilities.enumerated() {
                XCTAssertEqual(Double(score.probabilities[k]), expected, accuracy: 1e-4, "\(post.text): probability \(k)")
            }
            XCTAssertEqual(score.label, post.label, post.text)
            XCTAssertEqual(score.concept, post.concept, post.text)
            XCTAssertEqual(Double(score.conceptProbability), post.concept_probability, accuracy: 1e-5, post.text)
            XCTAssertEqual(Double(score.similarity), post.cosine, accuracy: 1e-4, post.text)
            XCTAssertEqual(score.namedWords, post.named, post.text)
            XCTAssertEqual(score.relatedWord, post.related_word, post.text)
        }
    }

    /// The scorer's cosines come from `SmallVectors.rowDots` (eight lanes and a tail): against
    /// plain float64 sums at every width from 1 to 19, and zeros for mismatched shapes.
    func testRowDotsMatchPlainSums() {
        var generator = SystemRandomNumberGenerator()
        for width in 1...19 {
            let rows = 5
            let matrix = (0..<(rows * width)).map { _ in Float.random(in: -1...1, using: &generator) }
            let v = (0..<width).map { _ in Float.random(in: -1...1, using: &generator) }
            let got = SmallVectors.rowDots(matrix, rows: rows, width: width, with: v)
            XCTAssertEqual(got.count, rows)
            for r in 0..<rows {
                let want = (0..<width).reduce(0.0) { $0 + Double(matrix[r * width + $1]) * Double(v[$1]) }
                XCTAssertEqual(Double(got[r]), want, accuracy: 1e-5, "width \(width), row \(r)")
            }
        }
        XCTAssertEqual(SmallVectors.rowDots([1, 2, 3], rows: 2, width: 2, with: [1, 1]), [0, 0])
        XCTAssertEqual(SmallVectors.rowDots([1, 2, 3, 4], rows: 2, width: 2, with: [1]), [0, 0])
    }

    func testConfigCheckNamesTheProblem() throws {
        var config = ZeroShotConfig()
        config.calibration.features = ["similarity", "colour"]
        XCTAssertThrowsError(try config.check(path: "m.json", labelCount: 3)) { error in
            XCTAssertTrue("\(error)".contains("unknown feature 'colour'"), "\(error)")
        }
        config = ZeroShotConfig()
        config.calibration.weights = [[1], [3]]
        XCTAssertThrowsError(try config.check(path: "m.json", labelCount: 3)) { error in
            XCTAssertTrue("\(error)".contains("3 rows"), "\(error)")
        }
        config = ZeroShotConfig()
        config.templates = ["a photo"]
        XCTAssertThrowsError(try config.check(path: "m.json", labelCount: 3)) { error in
            XCTAssertTrue("\(error)".contains("has no {}"), "\(error)")
        }
        XCTAssertNoThrow(try ZeroShotConfig().check(path: "m.json", labelCount: 3))
    }

    /// Without a calibration in the manifest the head keeps the single-prompt head's decisions:
    /// implicit from a similarity of 0.18, explicit from 0.35, a named class adding 0.3.
    func testDefaultCalibrationKeepsTheOldThresholds() throws {
        let head = try ZeroShotCorrelationHead(task: "correlation", labels: ["irrelevant", "implicit", "explicit"],
                                               config: ZeroShotConfig(), classNames: ["cat", "dog"],
                                               concepts: Tensor(shape: [2, 2], data: [1, 0, 0, 1]), wordVectors: nil)
        func label(_ cosine: Float, _ words: [String] = []) -> Int {
            let sentence = [cosine, (1 - cosine * cosine).squareRoot()]
            return head.scorer.score(logits: [Float(5), 0], sentence: sentence, words: words).label
        }
        XCTAssertEqual(label(0.17), 0)
        XCTAssertEqual(label(0.19), 1)
        XCTAssertEqual(label(0.34), 1)
        XCTAssertEqual(label(0.36), 2)
        XCTAssertEqual(label(0.0, ["cat"]), 1)
        XCTAssertEqual(label(0.1, ["cats"]), 2)
        XCTAssertEqual(label(0.0, ["dog"]), 0, "only candidate classes count as named")
    }
}
