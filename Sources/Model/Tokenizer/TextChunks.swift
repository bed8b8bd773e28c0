/// Cuts a text into pieces that tokenize independently, so the truncating encoders can stop once
/// they have enough ids instead of normalising and splitting a whole 10 MiB post.
///
/// A cut is made only just before a scalar at which nothing can join across it:
/// - ASCII whitespace, or ASCII punctuation other than `]`: it ends the word before it (the
///   pre-tokenizer splits there), it is an NFD starter that decomposes to itself (so canonical
///   reordering and decomposition, which never cross a starter, give the same scalars on both
///   sides), and it cannot fall inside a special token such as `[CLS]` (whose only characters
///   after the first are letters and `]`);
/// - a CJK ideograph: the normaliser surrounds it with spaces, so it is a word of its own, and
///   it is likewise a starter.
/// So `pieces(a + b) == pieces(a) + pieces(b)` for every cut, and the ids of the chunks joined are
/// exactly the ids of the text.
struct TextChunks: Sequence, IteratorProtocol {
    private let scalars: String.UnicodeScalarView
    private var start: String.UnicodeScalarView.Index
    /// Scalars per chunk before looking for a cut; the chunk runs on to the next cut after that.
    private let target: Int

    /// Chunks of `text` of at least `target` scalars each (the last may be shorter).
    init(_ text: String, target: Int) {
        scalars = text.unicodeScalars
        start = scalars.startIndex
        self.target = Swift.max(1, target)
    }

    mutating func next() -> String? {
        guard start < scalars.endIndex else { return nil }
        var end = start
        var count = 0
        while end < scalars.endIndex {
            if count >= target, Self.isCut(scalars[end]) { break }
            scalars.formIndex(after: &end)
            count += 1
        }
        defer { start = end }
        return String(scalars[start..<end])
    }

    /// Whether the text may be cut just before `c` (see the type's comment for why these).
    static func isCut(_ c: Unicode.Scalar) -> Bool {
        if c.isASCII {
            return c != "]" && (BasicTokenizer.isWhitespace(c) || BasicTokenizer.isPunctuation(c))
        }
        return BasicTokenizer.isChineseCharacter(c)
    }
}
