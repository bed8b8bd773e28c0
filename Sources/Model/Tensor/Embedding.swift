/// Row gathers and pooling.
public enum Gather {
    /// Rows `ids` of `table` (`[V, d]`), giving `[ids.count, d]`.
    ///
    /// Throws when an id is outside the table, instead of reading out of bounds.
    public static func rows(of table: Tensor, ids: [Int], context: String) throws(InferenceError) -> Tensor {
        let d = table.lastDimension, v = table.rowCount
        var out = Tensor(zeros: [ids.count, d])
        for id in ids where id < 0 || id >= v {
            throw .shapeMismatch(expected: [v], found: [id], context: "\(context): id out of range")
        }
        table.data.withUnsafeBufferPointer { t in
            out.data.withUnsafeMutableBufferPointer { o in
                guard let tp = t.baseAddress, let op = o.baseAddress else { return }
                for (i, id) in ids.enumerated() {
                    (op + i * d).update(from: tp + id * d, count: d)
                }
            }
        }
        return out
    }
}

/// Pooling of token states into one vector per post.
public enum Pooling {
    /// The masked mean: for post b, the mean of its first `lengths[b]` token states.
    ///
    /// - Parameter states: `[B, L, d]` (or `[B*L, d]`) token states.
    /// - Returns: `[B, d]`. A post of length 0 gives a zero vector.
    public static func maskedMean(_ states: Tensor, lengths: [Int], paddedLength: Int) throws(InferenceError) -> Tensor {
        let d = states.lastDimension, batch = lengths.count
        guard states.rowCount == batch * paddedLength, lengths.allSatisfy({ $0 <= paddedLength }) else {
            throw .shapeMismatch(expected: [batch, paddedLength, d], found: states.shape, context: "masked mean")
        }
        var out = Tensor(zeros: [batch, d])
        states.data.withUnsafeBufferPointer { sb in
            out.data.withUnsafeMutableBufferPointer { ob in
                guard let s = sb.baseAddress, let o = ob.baseAddress else { return }
                for b in 0..<batch where lengths[b] > 0 {
                    let dst = o + b * d
                    for t in 0..<lengths[b] { Vec.add(dst, s + (b * paddedLength + t) * d, count: d) }
                    Vec.scale(dst, by: 1 / Float(lengths[b]), count: d)
                }
            }
        }
        return out
    }
}
