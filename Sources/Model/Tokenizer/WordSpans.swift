/// A post's ids together with its words, for heads that work on words rather than word pieces
/// (AnANet gives each word a GloVe vector and the mean of its pieces' encoder states).
public struct TokenizedWords: Sendable, Equatable {
    /// One word of the post.
    public struct Word: Sendable, Equatable {
        /// The word as the normaliser leaves it (lower-cased, accents stripped): the GloVe lookup
        /// key. A special token typed in the text (`[MASK]`) is a word spelled as the token.
        public let text: String
        /// The positions of the word's pieces in `ids`. `ids[0]` is `[CLS]`, so the first word
        /// starts at 1; never empty (an unknown word is one `[UNK]` piece).
        public let pieces: Range<Int>
    }

    /// `[CLS] … [SEP]`, the same ids as `WordPieceTokenizer.encode(_:maxLength:)`.
    public let ids: [Int]
    /// The words in text order whose pieces all survived truncation.
    public let words: [Word]
}

extension WordPieceTokenizer {
    /// Tokenises `text` like `encode(_:maxLength:)` and also reports its words.
    ///
    /// Words are the pre-tokenizer's (whitespace split, each punctuation mark and CJK ideograph on
    /// its own), the same as `Encoding.word_ids` in the `tokenizers` package. Truncation keeps the
    /// first `maxLength - 2` pieces; a word whose pieces are cut is dropped rather than kept with a
    /// partial mean of states, since its GloVe vector would describe pieces the encoder never saw.
    /// Like `encode`, it tokenizes only as much of the text as the ids need.
    public func encodeWords(_ text: String, maxLength: Int) -> TokenizedWords {
        var ids = [clsID]
        var words: [TokenizedWords.Word] = []
        let bodyEnd = 1 + max(0, maxLength - 2)
        // Once the ids reach bodyEnd, every later word would be cut, so the rest is not read.
        for chunk in TextChunks(text, target: Self.chunkScalars(forPieces: bodyEnd)) {
            if ids.count >= bodyEnd { break }
            appendWords(of: chunk, ids: &ids, words: &words)
        }
        if ids.count > bodyEnd {
            ids.removeSubrange(bodyEnd...)
            words.removeAll { $0.pieces.upperBound > bodyEnd }
        }
        ids.append(sepID)
        return TokenizedWords(ids: ids, words: words)
    }

    /// Appends the pieces and words of `text` (one chunk of a post).
    private func appendWords(of text: String, ids: inout [Int], words: inout [TokenizedWords.Word]) {
        for segment in splitOnSpecials(text) {
            switch segment {
            case let .special(id):
                let spelling = specials.first { $0.id == id }?.scalars ?? []
                words.append(.init(text: Self.string(spelling), pieces: ids.count..<(ids.count + 1)))
                ids.append(id)
            case let .text(scalars):
                var view = String.UnicodeScalarView()
                view.append(contentsOf: scalars)
                for word in basic.split(Substring(String(view))) {
                    let start = ids.count
                    appendWordPieces(of: word, to: &ids)
                    words.append(.init(text: Self.string(word), pieces: start..<ids.count))
                }
            }
        }
    }

    /// The scalars as a `String`, unchanged (a `String` keeps the scalars it is built from).
    private static func string(_ scalars: [Unicode.Scalar]) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}
