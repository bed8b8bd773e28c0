import Foundation

/// Errors from loading a tokenizer.
public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    /// The vocabulary file is missing or unreadable.
    case missingVocabulary(path: String)
    /// The vocabulary lacks a token the tokenizer needs.
    case missingSpecialToken(path: String, token: String)

    public var description: String {
        switch self {
        case let .missingVocabulary(path):
            return "cannot read vocabulary \(path); a BERT model folder needs vocab.txt (run scripts/setup-models.sh for all-MiniLM-L6-v2)"
        case let .missingSpecialToken(path, token):
            return "vocabulary \(path) has no \(token) token; is it a BERT WordPiece vocab.txt?"
        }
    }
}

/// One batch of tokenised posts, padded with `[PAD]` to the longest post in the batch.
public struct TokenBatch: Sendable, Equatable {
    /// Each post's ids, `[CLS] … [SEP]`, unpadded.
    public let ids: [[Int]]
    /// The padded length: the longest post's length.
    public var paddedLength: Int { ids.map(\.count).max() ?? 0 }
    /// Each post's length before padding.
    public var lengths: [Int] { ids.map(\.count) }

    /// `[B * paddedLength]` ids, row-major, padded with `padID`.
    public func paddedIDs(padID: Int) -> [Int] {
        let length = paddedLength
        var out = [Int](repeating: padID, count: ids.count * length)
        for (b, row) in ids.enumerated() {
            out.replaceSubrange((b * length)..<(b * length + row.count), with: row)
        }
        return out
    }
}

/// BERT's WordPiece tokenizer over a `vocab.txt` (one token per line, id = line number), giving
/// the same ids as the `tokenizers` package with the checkpoint's `tokenizer.json`.
public struct WordPieceTokenizer: Sendable {
    /// Token (as Unicode scalar values) to id. Keyed by scalars, not `String`, because `String`
    /// equality is canonical equivalence: "한" would match its decomposed jamo, which the
    /// byte-comparing reference treats as different tokens.
    private let vocabulary: [[UInt32]: Int]
    /// The number of lines in the vocabulary (the largest id + 1).
    public let vocabularySize: Int
    /// The normaliser and pre-tokenizer.
    public let basic: BasicTokenizer
    /// Longest word (in Unicode scalars) tried against the vocabulary; longer words become `[UNK]`.
    public let maxCharactersPerWord: Int
    public let clsID: Int, sepID: Int, padID: Int, unkID: Int
    /// Special tokens matched verbatim in the raw text before normalisation (like `tokenizers`'
    /// added tokens with `normalized: false`): `[CLS]` typed in a post stays one token.
    let specials: [(scalars: [Unicode.Scalar], id: Int)]

    /// Builds a tokenizer from vocabulary lines.
    public init(vocabularyLines: [Substring], path: String = "vocab.txt", lowercase: Bool = true,
                maxCharactersPerWord: Int = 100) throws(TokenizerError) {
        var vocabulary: [[UInt32]: Int] = [:]
        vocabulary.reserveCapacity(vocabularyLines.count)
        for (id, line) in vocabularyLines.enumerated() {
            // Keep the first id for a duplicated token.
            let token = line.unicodeScalars.map(\.value)
            if vocabulary[token] == nil { vocabulary[token] = id }
        }
        func need(_ token: String) throws(TokenizerError) -> Int {
            guard let id = vocabulary[token.unicodeScalars.map(\.value)] else {
                throw .missingSpecialToken(path: path, token: token)
            }
            return id
        }
        self.vocabulary = vocabulary
        self.vocabularySize = vocabularyLines.count
        self.basic = BasicTokenizer(lowercase: lowercase)
        self.maxCharactersPerWord = maxCharactersPerWord
        self.clsID = try need("[CLS]")
        self.sepID = try need("[SEP]")
        self.padID = try need("[PAD]")
        self.unkID = try need("[UNK]")
        self.specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].compactMap { token in
            vocabulary[token.unicodeScalars.map(\.value)].map { (Array(token.unicodeScalars), $0) }
        }.sorted { $0.scalars.count > $1.scalars.count }
    }

    /// Loads `vocab.txt` at `url`.
    public init(vocabularyURL url: URL, lowercase: Bool = true) throws(TokenizerError) {
        guard let data = FileManager.default.contents(atPath: url.path),
              let text = String(data: data, encoding: .utf8) else {
            throw .missingVocabulary(path: url.path)
        }
        // Split on "\n" only: splitting on Characters would treat "\r\n" as one line break but
        // keep a lone "\r" inside a token, and tokens never contain either.
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        try self.init(vocabularyLines: lines.map { $0.hasSuffix("\r") ? $0.dropLast() : $0 },
                      path: url.path, lowercase: lowercase)
    }

    /// The word-piece ids of `text` without special tokens or truncation (the whole text: for
    /// model input use `encode`, which stops at its length).
    public func pieces(_ text: String) -> [Int] {
        var ids: [Int] = []
        for segment in splitOnSpecials(text) {
            switch segment {
            case let .special(id): ids.append(id)
            case let .text(scalars):
                var view = String.UnicodeScalarView()
                view.append(contentsOf: scalars)
                for word in basic.split(Substring(String(view))) { appendWordPieces(of: word, to: &ids) }
            }
        }
        return ids
    }

    /// `[CLS] pieces [SEP]`, with the pieces cut so the whole is at most `maxLength` ids.
    ///
    /// Only as much of the text is tokenized as the ids need (chunk by chunk, see `TextChunks`),
    /// so the work is bounded by `maxLength`, not by the text: a 10 MiB post costs about what its
    /// first few kilobytes cost, with the same ids as tokenizing all of it and truncating.
    public func encode(_ text: String, maxLength: Int) -> [Int] {
        let need = max(0, maxLength - 2)
        var body: [Int] = []
        if need > 0 {
            for chunk in TextChunks(text, target: Self.chunkScalars(forPieces: need)) {
                body.append(contentsOf: pieces(chunk))
                if body.count >= need { break }
            }
        }
        return [clsID] + body.prefix(need) + [sepID]
    }

    /// Scalars to tokenize at a time for `count` pieces: a piece takes at least one scalar, and
    /// an English word of ~5 letters and a space is usually one piece, so this rarely needs a
    /// second chunk, while a chunk that overshoots costs only a few kilobytes.
    static func chunkScalars(forPieces count: Int) -> Int { max(256, 8 * count) }

    /// Encodes a batch; padding happens later, to the longest post only.
    public func encode(batch texts: [String], maxLength: Int) -> TokenBatch {
        TokenBatch(ids: texts.map { encode($0, maxLength: maxLength) })
    }

    enum Segment { case text([Unicode.Scalar]), special(Int) }

    /// Splits raw text around verbatim special tokens (leftmost match, longest token first).
    func splitOnSpecials(_ text: String) -> [Segment] {
        let scalars = Array(text.unicodeScalars)
        guard scalars.contains("[") else { return [.text(scalars)] }
        var segments: [Segment] = []
        var start = 0, i = 0
        outer: while i < scalars.count {
            if scalars[i] == "[" {
                for special in specials
                where i + special.scalars.count <= scalars.count
                    && scalars[i..<(i + special.scalars.count)].elementsEqual(special.scalars) {
                    if start < i { segments.append(.text(Array(scalars[start..<i]))) }
                    segments.append(.special(special.id))
                    i += special.scalars.count
                    start = i
                    continue outer
                }
            }
            i += 1
        }
        if start < scalars.count { segments.append(.text(Array(scalars[start...]))) }
        return segments
    }

    /// Greedy longest-match-first WordPiece; a word with an unmatched remainder is one `[UNK]`.
    func appendWordPieces(of word: [Unicode.Scalar], to ids: inout [Int]) {
        guard word.count <= maxCharactersPerWord else { ids.append(unkID); return }
        var pieces: [Int] = []
        let values = word.map(\.value)
        var candidate: [UInt32] = []
        candidate.reserveCapacity(word.count + 2)
        var start = 0
        while start < values.count {
            var end = values.count
            var found: Int?
            while end > start {
                candidate.removeAll(keepingCapacity: true)
                if start > 0 { candidate.append(contentsOf: [35, 35]) } // "##"
                candidate.append(contentsOf: values[start..<end])
                if let id = vocabulary[candidate] { found = id; break }
                end -= 1
            }
            guard let id = found else { ids.append(unkID); return }
            pieces.append(id)
            start = end
        }
        ids.append(contentsOf: pieces)
    }
}
