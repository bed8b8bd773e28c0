import CKernels

/// Scaled dot-product multi-head attention over a batch of equal-length (padded) sequences.
public enum MultiHeadAttention {
    /// Attention for self-attention with fused projections. Each (post, head) pair is one call of
    /// the C kernel `pck_attention_head`, reading Q, K and V in place from the fused rows.
    ///
    /// - Parameters:
    ///   - qkv: `[B*L, 3*d]`, each row the query, key and value projections side by side (the layout
    ///     of one fused `Linear` with the three weights stacked).
    ///   - batch: B; `qkv.rowCount` must be `B * length`.
    ///   - length: L, the padded sequence length.
    ///   - heads: the number of heads; `d` must be a multiple of it.
    ///   - additiveMask: `[B, L]` values added to every score of the key at that position (0 to keep,
    ///     a large negative number to hide).
    ///   - threads: the (post, head) pairs are split into this many slices run at once (`Parallel`).
    /// - Returns: the concatenated heads' contexts, `[B*L, d]`.
    public static func selfAttention(qkv: Tensor, batch: Int, length: Int, heads: Int,
                                     additiveMask: Tensor, threads: Int = 1) throws(InferenceError) -> Tensor {
        let width3 = qkv.lastDimension
        guard width3 % 3 == 0, qkv.rowCount == batch * length else {
            throw .shapeMismatch(expected: [batch * length, width3], found: qkv.shape, context: "attention qkv")
        }
        let d = width3 / 3
        guard heads > 0, d % heads == 0 else {
            throw .shapeMismatch(expected: [heads], found: [d], context: "attention heads must divide width")
        }
        guard additiveMask.shape == [batch, length] else {
            throw .shapeMismatch(expected: [batch, length], found: additiveMask.shape, context: "attention mask")
        }
        var context = Tensor(zeros: [batch * length, d])
        additiveMask.data.withUnsafeBufferPointer { mb in
            attendEachPost(qkv, into: &context, heads: heads, offsets: (0..<batch).map { $0 * length },
                           lengths: [Int](repeating: length, count: batch), mask: mb.baseAddress, threads: threads)
        }
        return context
    }

    /// Self-attention over packed sequences: post b's rows are `offsets[b]..<offsets[b] + lengths[b]`
    /// of `qkv`, back to back with no padding, and each (post, head) pair attends over its own
    /// length only. Gives the padded version's result on every real row (a padded key's
    /// probability is exactly 0 there) without the padded rows' work.
    ///
    /// - Parameters:
    ///   - qkv: `[T, 3*d]` fused projections, `T` the sum of `lengths`.
    ///   - lengths: each post's number of rows.
    ///   - heads: the number of heads; `d` must be a multiple of it.
    ///   - threads: the (post, head) pairs are split into this many slices run at once (`Parallel`).
    /// - Returns: the concatenated heads' contexts, `[T, d]`, packed like `qkv`.
    public static func selfAttention(packedQKV qkv: Tensor, lengths: [Int], heads: Int,
                                     threads: Int = 1) throws(InferenceError) -> Tensor {
        let width3 = qkv.lastDimension
        let total = lengths.reduce(0, +)
        guard width3 % 3 == 0, qkv.rowCount == total, lengths.allSatisfy({ $0 >= 0 }) else {
            throw .shapeMismatch(expected: [total, width3], found: qkv.shape, context: "packed attention qkv")
        }
        let d = width3 / 3
        guard heads > 0, d % heads == 0 else {
            throw .shapeMismatch(expected: [heads], found: [d], context: "attention heads must divide width")
        }
        var context = Tensor(zeros: [total, d])
        var offsets = [Int](repeating: 0, count: lengths.count)
        for b in lengths.indices.dropFirst() { offsets[b] = offsets[b - 1] + lengths[b - 1] }
        attendEachPost(qkv, into: &context, heads: heads, offsets: offsets, lengths: lengths, mask: nil, threads: threads)
        return context
    }

    /// Runs `pck_attention_head` for every (post, head) pair: post b's rows start at `offsets[b]`
    /// and number `lengths[b]`; `mask`, when given, holds `lengths[b]` values per post, back to back.
    /// Q, K and V are read in place from the fused rows (strided views, no copies).
    private static func attendEachPost(_ qkv: Tensor, into context: inout Tensor, heads: Int, offsets: [Int],
                                       lengths: [Int], mask: UnsafePointer<Float>?, threads: Int) {
        let width3 = qkv.lastDimension, d = width3 / 3, dh = d / heads
        let scale = 1 / Float(dh).squareRoot()
        guard let longest = lengths.max(), longest > 0 else { return }
        let scratchCount = pck_attention_scratch(longest, dh)
        qkv.data.withUnsafeBufferPointer { qb in
            context.data.withUnsafeMutableBufferPointer { cb in
                guard let q0 = qb.baseAddress, let c0 = cb.baseAddress else { return }
                Parallel.forEachSlice(count: lengths.count * heads, threads: threads) { pairs in
                    // One scratch buffer per slice, reused for each of its (post, head) pairs.
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchCount)
                    defer { scratch.deallocate() }
                    for pair in pairs {
                        let b = pair / heads, h = pair % heads
                        let rows = q0 + offsets[b] * width3
                        pck_attention_head(rows + h * dh, rows + d + h * dh, rows + 2 * d + h * dh, width3,
                                           lengths[b], dh, scale, mask.map { $0 + offsets[b] },
                                           c0 + offsets[b] * d + h * dh, d, scratch)
                    }
                }
            }
        }
    }

    /// The additive key mask of HF's BertModel, `(1 - mask) * finfo(float32).min`: 0 for the first
    /// `lengths[b]` positions of post b, `hiddenValue` for its padding. After the max subtraction in
    /// the softmax, this and the older `-10000` both give padded keys a probability of exactly 0.
    public static func additiveMask(lengths: [Int], paddedLength: Int,
                                    hiddenValue: Float = -Float.greatestFiniteMagnitude) -> Tensor {
        var mask = Tensor(zeros: [lengths.count, paddedLength])
        for (b, n) in lengths.enumerated() where n < paddedLength {
            for j in n..<paddedLength { mask.data[b * paddedLength + j] = hiddenValue }
        }
        return mask
    }
}
