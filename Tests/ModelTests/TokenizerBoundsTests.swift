import Foundation
import XCTest
@testable import Model

/// The truncating encoders stop once they have `maxLength` ids: a 10 MiB post costs about what its
/// beginning costs, with exactly the ids that tokenizing all of it and truncating would give.
final class TokenizerBoundsTests: XCTestCase {
    /// The real vocabulary when scripts/setup-models.sh has run (more pieces per word), else the
    /// committed tiny one; the properties tested hold for both.
    private func tokenizer() throws -> WordPieceTokenizer {
        let real = TestPaths.miniLM.appendingPathComponent("vocab.txt")
        let url = FileManager.default.fileExists(atPath: real.path) ? real : TestPaths.tinyBert.appendingPathComponent("vocab.txt")
        return try WordPieceTokenizer(vocabularyURL: url)
    }

    /// About `bytes` of varied post text: words, punctuation, accents, CJK, emoji, a typed
    /// special token, line breaks.
    private static func hugeText(bytes: Int) -> String {
        let paragraph = "Love waiting 3 hours at the airport!!! Café naïve ÅNGSTRÖM 日本語のテキスト [MASK] #blessed 😀 (really)\n"
        var text = ""
        text.reserveCapacity(bytes + paragraph.utf8.count)
        while text.utf8.count < bytes { text += paragraph }
        return text
    }

    /// Peak resident memory so far (VmHWM from /proc/self/status), 0 where there is none.
    private static func peakResidentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return 0 }
        return kib * 1024
    }

    func testTenMebibyteTextCostsAboutWhatItsBeginningCosts() throws {
        let tokenizer = try tokenizer()
        let text = Self.hugeText(bytes: 10 << 20)
        let beginning = String(text.prefix(16 * 1024))
        for maxLength in [16, 128, 512] {
            let peakBefore = Self.peakResidentBytes()
            let start = Date()
            let ids = tokenizer.encode(text, maxLength: maxLength)
            let words = tokenizer.encodeWords(text, maxLength: maxLength)
            let elapsed = Date().timeIntervalSince(start)
            let growth = Self.peakResidentBytes() - peakBefore
            // Tokenizing all 10 MiB (what happened before) takes tens of seconds in a debug build
            // and hundreds of MiB for the scalar arrays and millions of words.
            XCTAssertLessThan(elapsed, 1.0, "maxLength \(maxLength): \(elapsed) s for a 10 MiB text")
            XCTAssertLessThan(growth, 32 << 20, "maxLength \(maxLength): peak resident memory grew by \(growth) bytes")
            XCTAssertEqual(ids.count, maxLength)
            XCTAssertEqual(ids, tokenizer.encode(beginning, maxLength: maxLength))
            XCTAssertEqual(words, tokenizer.encodeWords(beginning, maxLength: maxLength))
            XCTAssertEqual(words.ids, ids)
        }
        let batch = tokenizer.encode(batch: [text, "short post", text], maxLength: 64)
        XCTAssertEqual(batch.ids, [tokenizer.encode(beginning, maxLength: 64), tokenizer.encode("short post", maxLength: 64),
                                   tokenizer.encode(beginning, maxLength: 64)])
    }

    /// Same ids as the whole-text reference (`pieces`, then truncation) for texts that need one
    /// chunk, several, or all of the text.
    func testEncodeMatchesTheWholeTextReference() throws {
        let tokenizer = try tokenizer()
        let texts = ["", "a", "[CLS]", Self.hugeText(bytes: 40_000), String(repeating: "日本", count: 3000),
                     String(repeating: "word, ", count: 5000), String(repeating: "x", count: 5000) + " end"]
        for text in texts {
            let all = tokenizer.pieces(text)
            for maxLength in [0, 1, 2, 3, 77, 512, 4096] {
                let expected = [tokenizer.clsID] + all.prefix(max(0, maxLength - 2)) + [tokenizer.sepID]
                XCTAssertEqual(tokenizer.encode(text, maxLength: maxLength), expected, "\(text.prefix(20))… at \(maxLength)")
                XCTAssertEqual(tokenizer.encodeWords(text, maxLength: maxLength).ids, expected, "\(text.prefix(20))… at \(maxLength)")
            }
        }
    }

    /// Every place `TextChunks` cuts leaves the ids unchanged, however small the chunks: the cut
    /// characters are word boundaries that NFD and special tokens never reach across.
    func testChunkCutsNeverChangeIds() throws {
        let tokenizer = try tokenizer()
        let tricky = [
            "e\u{301} \u{301}x !\u{301}\u{316}y",            // combining marks after a cut character
            "[CLS][SEP]x[MASK] [PAD]] [[UNK] [CL S]",          // special tokens next to brackets
            "a]b[c]d",                                          // `]` is never a cut
            "日\u{301}本 語\u{3099}x",                           // marks after ideographs
            "tab\tnew\nline\r\u{0}\u{200B}zero\u{FEFF}width",   // controls and format characters
            "İSTANBUL ΣΊΣΥΦΟΣ ǅemal ﬁne ①②",                   // lower-casing and NFD that change lengths
            "\u{FA0E}\u{F900}\u{2F800}x",                       // CJK compatibility ideographs
        ]
        for text in tricky {
            let whole = tokenizer.pieces(text)
            for target in 1...6 {
                let chunks = Array(TextChunks(text, target: target))
                XCTAssertEqual(chunks.joined(), text, "chunks of \(target) lose text")
                XCTAssertEqual(chunks.flatMap { tokenizer.pieces($0) }, whole, "\(text) in chunks of \(target): \(chunks)")
            }
        }
    }

    /// A text with no cut point at all is one chunk: still right, one `[UNK]` for the giant word.
    func testTextWithoutCutPointsIsOneUnknownWord() throws {
        let tokenizer = try tokenizer()
        let text = String(repeating: "a", count: 1 << 20)
        XCTAssertEqual(Array(TextChunks(text, target: 256)).count, 1)
        XCTAssertEqual(tokenizer.encode(text, maxLength: 128), [tokenizer.clsID, tokenizer.unkID, tokenizer.sepID])
    }
}
