// libFuzzer target: the WordPiece tokenizer (Sources/Model/Tokenizer/*.swift, compiled into this
// binary by scripts/fuzz.sh). The vocabulary is the file named by FUZZ_VOCAB (the real
// all-MiniLM-L6-v2 vocab.txt when scripts/setup-models.sh has run, else the tiny test fixture).
//
// Besides "no crash", it checks that tokenizing a text chunk by chunk (`TextChunks`, at any chunk
// size) gives the ids of the whole text, and that the truncating encoders, which stop early, give
// exactly what the whole-text reference gives: `[CLS] + pieces(text).prefix(maxLength - 2) + [SEP]`, and
// that `encodeWords` gives the same ids with word ranges inside them.

import Foundation

private let tokenizer: WordPieceTokenizer = {
    let path = ProcessInfo.processInfo.environment["FUZZ_VOCAB"] ?? "Tests/ModelTests/Fixtures/tiny-bert/vocab.txt"
    do {
        return try WordPieceTokenizer(vocabularyURL: URL(fileURLWithPath: path))
    } catch {
        fputs("fuzz_tokenizer: \(error); set FUZZ_VOCAB to a vocab.txt\n", stderr)
        exit(2)
    }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizer(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let all = tokenizer.pieces(text)
    // The cuts the encoders make must not change a single id, whatever the chunk size.
    for target in [1, 3, 17] {
        let chunked = TextChunks(text, target: target).flatMap { tokenizer.pieces($0) }
        check(chunked == all, "chunks of \(target) scalars give \(chunked), the whole text \(all)")
    }
    for maxLength in [0, 2, 3, 7, 64, 512] {
        let expected = [tokenizer.clsID] + all.prefix(max(0, maxLength - 2)) + [tokenizer.sepID]
        let ids = tokenizer.encode(text, maxLength: maxLength)
        check(ids == expected, "encode(maxLength: \(maxLength)) gave \(ids), the whole text gives \(expected)")
        let words = tokenizer.encodeWords(text, maxLength: maxLength)
        check(words.ids == ids, "encodeWords(maxLength: \(maxLength)) gave \(words.ids), encode gave \(ids)")
        var previousEnd = 1
        for word in words.words {
            check(word.pieces.lowerBound >= previousEnd && word.pieces.upperBound <= ids.count - 1 && !word.pieces.isEmpty,
                  "word \(word.text) has pieces \(word.pieces) in \(ids.count) ids")
            previousEnd = word.pieces.upperBound
        }
    }
    check(all.allSatisfy { $0 >= 0 && $0 < tokenizer.vocabularySize }, "an id outside the vocabulary")
    return 0
}

private func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() {
        fputs("fuzz_tokenizer: \(message())\n", stderr)
        abort()
    }
}
