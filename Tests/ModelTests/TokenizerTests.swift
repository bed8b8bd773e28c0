import Foundation
import XCTest
@testable import Model

/// WordPiece tokenizer: unit behaviour on the tiny vocabulary, parity with `tokenizers` on the real one.
final class TokenizerTests: XCTestCase {
    private func tiny() throws -> WordPieceTokenizer {
        try WordPieceTokenizer(vocabularyURL: TestPaths.tinyBert.appendingPathComponent("vocab.txt"))
    }

    func testTinyFixtureIDsMatchReference() throws {
        let golden = try GoldenTexts.load(TestPaths.tinyBert.appendingPathComponent("expected.json"))
        let tokenizer = try tiny()
        for (text, ids) in zip(golden.texts, golden.ids) {
            XCTAssertEqual(tokenizer.encode(text, maxLength: golden.max_length), ids, "text: \(text)")
        }
    }

    func testNormalisation() {
        let basic = BasicTokenizer()
        func words(_ s: String) -> [String] {
            basic.split(Substring(s)).map { w in var v = String.UnicodeScalarView(); v.append(contentsOf: w); return String(v) }
        }
        XCTAssertEqual(words("Héllo, WORLD!!"), ["hello", ",", "world", "!", "!"])
        XCTAssertEqual(words("a\u{0}b\u{200B}c\td"), ["abc", "d"])
        XCTAssertEqual(words("中文ok"), ["中", "文", "ok"])
        XCTAssertEqual(words("$5+3^2`x"), ["$", "5", "+", "3", "^", "2", "`", "x"])
        XCTAssertEqual(words("   "), [])
    }

    func testUnknownLongWordsAndTruncation() throws {
        let tokenizer = try tiny()
        XCTAssertEqual(tokenizer.pieces("€"), [tokenizer.unkID])
        XCTAssertEqual(tokenizer.pieces(String(repeating: "a", count: 101)), [tokenizer.unkID])
        XCTAssertEqual(tokenizer.pieces(String(repeating: "a", count: 100)).count, 100)
        let ids = tokenizer.encode("the cat sat on the mat", maxLength: 4)
        XCTAssertEqual(ids.count, 4)
        XCTAssertEqual(ids.first, tokenizer.clsID)
        XCTAssertEqual(ids.last, tokenizer.sepID)
        XCTAssertEqual(tokenizer.encode("", maxLength: 10), [tokenizer.clsID, tokenizer.sepID])
        let batch = tokenizer.encode(batch: ["the cat", "the"], maxLength: 10)
        XCTAssertEqual(batch.paddedLength, 4)
        XCTAssertEqual(batch.paddedIDs(padID: 0).count, 8)
        XCTAssertEqual(batch.paddedIDs(padID: 0).last, 0)
    }

    func testMissingVocabularyIsAClearError() {
        XCTAssertThrowsError(try WordPieceTokenizer(vocabularyURL: URL(fileURLWithPath: "/nonexistent/vocab.txt"))) { error in
            XCTAssertEqual(error as? TokenizerError, .missingVocabulary(path: "/nonexistent/vocab.txt"))
            XCTAssertTrue("\(error)".contains("setup-models.sh"))
        }
    }

    /// Identical ids to `tokenizers` with all-MiniLM-L6-v2's tokenizer.json on the generated cases.
    func testParityWithHuggingFaceTokenizers() throws {
        let cases = TestPaths.golden.appendingPathComponent("tokenizer-cases.jsonl")
        let vocab = TestPaths.miniLM.appendingPathComponent("vocab.txt")
        try requireGeneratedFiles(cases, vocab)
        let tokenizer = try WordPieceTokenizer(vocabularyURL: vocab)
        let text = try String(contentsOf: cases, encoding: .utf8)
        var lines = text.split(separator: "\n")
        struct Header: Decodable { let max_length: Int; let count: Int }
        struct Case: Decodable { let text: String; let ids: [Int] }
        let header = try JSONDecoder().decode(Header.self, from: Data(lines.removeFirst().utf8))
        XCTAssertEqual(lines.count, header.count)
        XCTAssertGreaterThanOrEqual(lines.count, 10_000)
        var failures = 0
        for line in lines {
            let c = try JSONDecoder().decode(Case.self, from: Data(line.utf8))
            let ids = tokenizer.encode(c.text, maxLength: header.max_length)
            if ids != c.ids {
                failures += 1
                if failures <= 10 {
                    XCTFail("text \(c.text.unicodeScalars.map { String($0.value, radix: 16) })\n expected \(c.ids)\n got      \(ids)")
                }
            }
        }
        XCTAssertEqual(failures, 0, "\(failures) of \(lines.count) cases differ")
    }
}

/// Every Unicode scalar through the normaliser and pre-tokenizer, against the reference's table.
final class CodePointParityTests: XCTestCase {
    func testEveryCodePointNormalisesAndSplitsLikeReference() throws {
        let table = TestPaths.golden.appendingPathComponent("codepoint-table.tsv")
        try requireGeneratedFiles(table)
        let basic = BasicTokenizer()
        let text = try String(contentsOf: table, encoding: .ascii)
        var checked = 0, failures = 0
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 2, let value = UInt32(fields[0], radix: 16), let scalar = Unicode.Scalar(value) else {
                XCTFail("bad line \(line)"); continue
            }
            var input = String.UnicodeScalarView()
            input.append("a"); input.append(scalar); input.append("a")
            let words = basic.split(Substring(String(input)))
            let got = words.map { $0.map { String($0.value, radix: 16) }.joined(separator: " ") }.joined(separator: "|")
            checked += 1
            if got != fields[1] {
                failures += 1
                if failures <= 10 { XCTFail("U+\(fields[0]): expected \(fields[1]), got \(got)") }
            }
        }
        XCTAssertGreaterThan(checked, 1_100_000)
        XCTAssertEqual(failures, 0, "\(failures) code points differ")
    }
}
