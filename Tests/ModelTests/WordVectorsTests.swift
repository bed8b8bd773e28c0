import Foundation
import XCTest
@testable import Model

/// The word-vector table: the tiny committed fixture, broken folders, and the real GloVe 6B 50d.
final class WordVectorsTests: XCTestCase {
    private let tinyGlove = TestPaths.fixtures.appendingPathComponent("ananet/glove")

    func testTinyTableLooksUpEveryWordAndItsBytes() throws {
        let table = try WordVectors(directory: tinyGlove)
        XCTAssertEqual(table.count, 21)
        XCTAssertEqual(table.dimensions, 8)
        let raw = try Data(contentsOf: tinyGlove.appendingPathComponent("vectors.f32"))
        let words = try String(contentsOf: tinyGlove.appendingPathComponent("words.txt"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        XCTAssertEqual(words.count, table.count)
        for (row, word) in words.enumerated() {
            XCTAssertEqual(table.row(of: word), row, word)
            XCTAssertEqual(table.word(atRow: row), word)
            let expected = (0..<8).map { i in
                Float(bitPattern: raw.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: (row * 8 + i) * 4, as: UInt32.self)) })
            }
            XCTAssertEqual(table.vector(for: word), expected, word)
        }
        // Unknown words, and byte-exact matching: the decomposed spelling of "café" is another word,
        // and the accent-stripped "cafe" has its own row.
        XCTAssertNil(table.vector(for: "mat"))
        XCTAssertNil(table.row(of: ""))
        XCTAssertNil(table.row(of: "cafe\u{301}"))
        XCTAssertNotEqual(table.row(of: "café"), table.row(of: "cafe"))
        XCTAssertNil(table.row(of: "The"))
    }

    func testUnknownWordCopiesZeros() throws {
        let table = try WordVectors(directory: tinyGlove)
        var buffer = [Float](repeating: 7, count: 8)
        func copy(_ word: String) -> Bool? {
            buffer.withUnsafeMutableBufferPointer { b in b.baseAddress.map { table.copyVector(for: word, into: $0) } }
        }
        XCTAssertEqual(copy("nobody"), false)
        XCTAssertEqual(buffer, [Float](repeating: 0, count: 8))
        XCTAssertEqual(copy("cat"), true)
        XCTAssertEqual(buffer, table.vector(for: "cat"))
    }

    func testBrokenFoldersNameTheFile() throws {
        let dir = try temporaryDirectory(self)
        XCTAssertThrowsError(try WordVectors(directory: dir)) { error in
            guard case let .missingFile(path, hint)? = error as? ModelLoadError else { return XCTFail("\(error)") }
            XCTAssertTrue(path.hasSuffix("config.json"))
            XCTAssertTrue(hint.contains("setup-models.sh"))
        }
        for name in ["config.json", "vectors.f32", "words.txt"] {
            try FileManager.default.copyItem(at: tinyGlove.appendingPathComponent(name), to: dir.appendingPathComponent(name))
        }
        XCTAssertNoThrow(try WordVectors(directory: dir))

        // A vectors file one float short.
        let vectors = dir.appendingPathComponent("vectors.f32")
        let full = try Data(contentsOf: vectors)
        try full.dropLast(4).write(to: vectors)
        XCTAssertThrowsError(try WordVectors(directory: dir)) { error in
            XCTAssertTrue("\(error)".contains(vectors.path), "\(error)")
        }
        try full.write(to: vectors)

        // A word list with one line too many.
        let words = dir.appendingPathComponent("words.txt")
        try (String(contentsOf: words, encoding: .utf8) + "extra\n").write(to: words, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try WordVectors(directory: dir)) { error in
            XCTAssertTrue("\(error)".contains(words.path) && "\(error)".contains("22 lines"), "\(error)")
        }

        // Missing vectors file.
        try FileManager.default.removeItem(at: vectors)
        XCTAssertThrowsError(try WordVectors(directory: dir)) { error in
            guard case let .missingFile(path, _)? = error as? ModelLoadError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, vectors.path)
        }

        try #"{"dims": 8}"#.write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try WordVectors(directory: dir)) { error in
            guard case let .invalidConfig(path, _)? = error as? ModelLoadError else { return XCTFail("\(error)") }
            XCTAssertTrue(path.hasSuffix("config.json"))
        }
    }

    /// GloVe 6B 50d as scripts/setup-models.sh converts it (skipped when it has not been run, failed under CI).
    func testRealGloVe() throws {
        let folder = TestPaths.models.appendingPathComponent("glove-6b-50d")
        try requireGeneratedFiles(folder.appendingPathComponent("vectors.f32"), folder.appendingPathComponent("words.txt"))
        let start = Date()
        let table = try WordVectors(directory: folder)
        print("GloVe 6B 50d: mapped and indexed \(table.count) words in \(Date().timeIntervalSince(start)) s")
        XCTAssertEqual(table.count, 400_000)
        XCTAssertEqual(table.dimensions, 50)
        // First values of two well-known rows of glove.6B.50d.txt.
        XCTAssertEqual(table.row(of: "the"), 0)
        XCTAssertEqual(Array(try XCTUnwrap(table.vector(for: "the")).prefix(5)), [0.418, 0.24968, -0.41242, 0.1217, 0.34527])
        XCTAssertEqual(Array(try XCTUnwrap(table.vector(for: "cat")).prefix(3)), [0.45281, -0.50108, -0.53714])
        XCTAssertNil(table.vector(for: "zzqqxxyy-not-a-word"))
        XCTAssertNotNil(table.row(of: "josé"))
        for row in stride(from: 0, to: table.count, by: 997) {
            XCTAssertEqual(table.row(of: table.word(atRow: row)), row)
        }
    }
}
