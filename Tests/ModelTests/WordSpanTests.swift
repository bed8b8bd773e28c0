import Foundation
import XCTest
@testable import Model

/// `encodeWords` against the numpy reference's words (tools/reference/ananet_reference.py,
/// `word_spans`, built on `tokenizers`' `Encoding.word_ids`).
final class WordSpanTests: XCTestCase {
    private struct Case: Decodable {
        let text: String
        let max_length: Int
        let ids: [Int]
        let words: [[WordField]]
    }

    /// A `[text, start, end]` triple's element.
    enum WordField: Decodable, Equatable {
        case text(String), index(Int)
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let i = try? c.decode(Int.self) { self = .index(i) } else { self = .text(try c.decode(String.self)) }
        }
    }

    static func words(_ fields: [[WordField]]) -> [TokenizedWords.Word] {
        fields.compactMap { f in
            guard f.count == 3, case let .text(t) = f[0], case let .index(s) = f[1], case let .index(e) = f[2] else { return nil }
            return TokenizedWords.Word(text: t, pieces: s..<e)
        }
    }

    func testSmallCases() throws {
        let tokenizer = try WordPieceTokenizer(vocabularyURL: TestPaths.tinyBert.appendingPathComponent("vocab.txt"))
        let plain = tokenizer.encodeWords("Héllo, cats [MASK]!", maxLength: 32)
        XCTAssertEqual(plain.ids, tokenizer.encode("Héllo, cats [MASK]!", maxLength: 32))
        XCTAssertEqual(plain.words.map(\.text), ["hello", ",", "cats", "[MASK]", "!"])
        XCTAssertEqual(plain.words.map(\.pieces), [1..<2, 2..<3, 3..<5, 5..<6, 6..<7])
        // "cats" is cat ##s: a limit that keeps only "cat" drops the word but keeps the id.
        let cut = tokenizer.encodeWords("hello cats", maxLength: 4)
        XCTAssertEqual(cut.ids, tokenizer.encode("hello cats", maxLength: 4))
        XCTAssertEqual(cut.ids.count, 4)
        XCTAssertEqual(cut.words.map(\.text), ["hello"])
        XCTAssertEqual(tokenizer.encodeWords("", maxLength: 8), TokenizedWords(ids: [tokenizer.clsID, tokenizer.sepID], words: []))
        XCTAssertEqual(tokenizer.encodeWords("hello", maxLength: 2).words, [])
    }

    /// 300 varied strings (make_word_span_cases.py) with all-MiniLM-L6-v2's vocabulary.
    func testParityWithReferenceOnVariedStrings() throws {
        let vocab = TestPaths.miniLM.appendingPathComponent("vocab.txt")
        try requireGeneratedFiles(vocab)
        let tokenizer = try WordPieceTokenizer(vocabularyURL: vocab)
        let text = try String(contentsOf: TestPaths.fixtures.appendingPathComponent("ananet/word-spans.jsonl"), encoding: .utf8)
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.count, 300)
        var failures = 0, words = 0, cut = 0
        for line in lines {
            let c = try JSONDecoder().decode(Case.self, from: Data(line.utf8))
            let expected = TokenizedWords(ids: c.ids, words: Self.words(c.words))
            XCTAssertEqual(expected.words.count, c.words.count)
            let got = tokenizer.encodeWords(c.text, maxLength: c.max_length)
            words += got.words.count
            if got.ids.count == c.max_length { cut += 1 }
            if got != expected {
                failures += 1
                if failures <= 5 { XCTFail("\(c.text.debugDescription)\n expected \(expected)\n got      \(got)") }
            }
        }
        XCTAssertEqual(failures, 0)
        XCTAssertGreaterThan(words, 3000)
        XCTAssertGreaterThan(cut, 50, "enough cases reach the length limit")
    }
}
