/// AnANet's word inputs: `e_j = [glove(w_j) ; ctx(w_j)]`, the word's static vector followed by the
/// mean of the text-encoder states of its word pieces (MODEL-SPEC.md, "Correlation head: AnANet").
public enum WordFeatures {
    /// The feature rows of the first `maxWords` words, `[min(words.count, maxWords), G + D]`.
    ///
    /// - Parameters:
    ///   - words: from `WordPieceTokenizer.encodeWords`; their piece ranges index `tokenStates`.
    ///   - tokenStates: `[L, D]` encoder states of the same ids (`BertOutput.tokenStates(ofPost:)`).
    ///   - vectors: the GloVe table (`G` = `vectors.dimensions`); a word it lacks gets zeros.
    ///   - maxWords: the head's N_max. Later words are dropped: the head has no slot for them.
    public static func rows(words: [TokenizedWords.Word], tokenStates: Tensor, vectors: WordVectors,
                            maxWords: Int) throws(InferenceError) -> Tensor {
        guard tokenStates.rank == 2 else {
            throw .shapeMismatch(expected: [-1, -1], found: tokenStates.shape, context: "word features: token states")
        }
        let used = words.prefix(max(0, maxWords))
        let length = tokenStates.shape[0], textWidth = tokenStates.shape[1]
        for word in used where word.pieces.isEmpty || word.pieces.upperBound > length {
            throw .shapeMismatch(expected: [word.pieces.upperBound, textWidth], found: tokenStates.shape,
                                 context: "word features: pieces \(word.pieces) of '\(word.text)'")
        }
        let glove = vectors.dimensions, width = glove + textWidth
        var out = Tensor(zeros: [used.count, width])
        tokenStates.data.withUnsafeBufferPointer { statesBuffer in
            out.data.withUnsafeMutableBufferPointer { outBuffer in
                guard let states = statesBuffer.baseAddress, let o = outBuffer.baseAddress else { return }
                for (j, word) in used.enumerated() {
                    let row = o + j * width
                    vectors.copyVector(for: word.text, into: row)
                    // ctx: the mean of the pieces' states (the row starts as zeros).
                    let context = row + glove
                    for piece in word.pieces { Vec.add(context, states + piece * textWidth, count: textWidth) }
                    Vec.scale(context, by: 1 / Float(word.pieces.count), count: textWidth)
                }
            }
        }
        return out
    }
}
