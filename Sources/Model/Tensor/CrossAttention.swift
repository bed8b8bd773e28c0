import COpenBLAS

extension MultiHeadAttention {
    /// Scaled dot-product multi-head attention of one sequence's queries over another's keys and
    /// values, for a batch of posts: queries and keys may differ in length, and each post has its
    /// own key mask. Self-attention is the case where both come from the same states.
    ///
    /// - Parameters:
    ///   - query: `[B*Lq, A]`, the projected queries of every post's `Lq` (padded) positions.
    ///   - keyValue: `[B*Lk, 2*A]`, each row the projected key and value side by side (the layout of
    ///     one `Linear` with the two weights stacked).
    ///   - batch: B.
    ///   - queryLength: Lq, the padded query length.
    ///   - keyLength: Lk, the padded key length.
    ///   - heads: the number of heads; `A` must be a multiple of it. Scores are scaled by `1/√(A/heads)`.
    ///   - additiveMask: `[B, Lk]` values added to every score of the key at that position
    ///     (0 to keep, a large negative number to hide).
    /// - Returns: the concatenated heads' contexts, `[B*Lq, A]`.
    public static func crossAttention(query: Tensor, keyValue: Tensor, batch: Int, queryLength: Int,
                                      keyLength: Int, heads: Int, additiveMask: Tensor) throws(InferenceError) -> Tensor {
        let width = query.lastDimension
        guard query.rowCount == batch * queryLength else {
            throw .shapeMismatch(expected: [batch * queryLength, width], found: query.shape, context: "cross-attention query")
        }
        guard keyValue.lastDimension == 2 * width, keyValue.rowCount == batch * keyLength else {
            throw .shapeMismatch(expected: [batch * keyLength, 2 * width], found: keyValue.shape, context: "cross-attention keys and values")
        }
        guard heads > 0, width % heads == 0 else {
            throw .shapeMismatch(expected: [heads], found: [width], context: "attention heads must divide width")
        }
        guard additiveMask.shape == [batch, keyLength] else {
            throw .shapeMismatch(expected: [batch, keyLength], found: additiveMask.shape, context: "cross-attention mask")
        }
        let dh = width / heads
        let scale = 1 / Float(dh).squareRoot()
        var context = Tensor(zeros: [batch * queryLength, width])
        // No keys: every context is the zero vector (an empty weighted sum).
        guard batch > 0, queryLength > 0, keyLength > 0, dh > 0 else { return context }
        // One scores buffer reused for every (post, head): [Lq, Lk].
        var scores = [Float](repeating: 0, count: queryLength * keyLength)
        let LQ = Int32(queryLength), LK = Int32(keyLength), DH = Int32(dh)
        let ldq = Int32(width), ldkv = Int32(2 * width)
        query.data.withUnsafeBufferPointer { qb in
            keyValue.data.withUnsafeBufferPointer { kvb in
                additiveMask.data.withUnsafeBufferPointer { mb in
                    context.data.withUnsafeMutableBufferPointer { cb in
                        scores.withUnsafeMutableBufferPointer { sb in
                            guard let q0 = qb.baseAddress, let kv0 = kvb.baseAddress, let m0 = mb.baseAddress,
                                  let c0 = cb.baseAddress, let s = sb.baseAddress else { return }
                            for b in 0..<batch {
                                let queries = q0 + b * queryLength * width
                                let keyRows = kv0 + b * keyLength * 2 * width
                                let out = c0 + b * queryLength * width
                                for h in 0..<heads {
                                    // Strided views of head h: no copies of Q, K or V.
                                    let q = queries + h * dh, k = keyRows + h * dh, v = keyRows + width + h * dh
                                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, LQ, LK, DH,
                                                scale, q, ldq, k, ldkv, 0, s, LK)
                                    Softmax.rows(s, rows: queryLength, width: keyLength, mask: m0 + b * keyLength)
                                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, LQ, DH, LK,
                                                1, s, LK, v, ldkv, 0, out + h * dh, ldq)
                                }
                            }
                        }
                    }
                }
            }
        }
        return context
    }
}
