import COpenBLAS

/// What `AnANetHead.forward` returns for a batch of B posts.
public struct AnANetOutput: Sendable {
    /// `[B, C]`: `λ · associationLogits + η · alignmentLogits`.
    public let logits: Tensor
    /// `[B, C]`: softmax of `logits` (labels: 0 = irrelevant, 1 = implicit, 2 = explicit).
    public let probabilities: Tensor
    /// `[B, C]`: the association net's `W_g r_g + b_g`.
    public let associationLogits: Tensor
    /// `[B, C]`: the alignment net's `W_l r_l + b_l`.
    public let alignmentLogits: Tensor
    /// One entry per post when `keepStages` was set, else empty.
    public let stages: [AnANetStages]
}

/// Every intermediate value of one post (MODEL-SPEC.md's names in brackets); N is the post's
/// word count, N_max and K the head's.
public struct AnANetStages: Sendable {
    /// [V] `[K, d]`: ReLU of the projected regions.
    public let regions: Tensor
    /// The forward GRU direction's states, `[N, d/2]`.
    public let forwardStates: Tensor
    /// The reverse GRU direction's states, `[N, d/2]` (row j: after reading words N-1 … j).
    public let backwardStates: Tensor
    /// [T] `[N, d]`: both directions side by side.
    public let words: Tensor
    /// [f_img] `[d]`: mean of `regions`.
    public let imageVector: [Float]
    /// [f_txt] `[d]`: mean of `words`; zeros for a post without words.
    public let textVector: [Float]
    /// [r_g] `[2P]`: `[W f_img ; W f_txt]`.
    public let global: [Float]
    /// [S] `[K, N]`: `V Tᵀ`.
    public let scores: Tensor
    /// [V^] `[K, d]`: each region's attention over the words applied to `words`; zeros without words.
    public let attendedRegions: Tensor
    /// [T^] `[N, d]`: each word's attention over the regions applied to `regions`.
    public let attendedWords: Tensor
    /// [v] `[K]`: cos(V_i, V^_i).
    public let regionSimilarity: [Float]
    /// [t] `[N_max]`: cos(T_j, T^_j), zeros past N.
    public let wordSimilarity: [Float]
    /// [r_l] `[N_max + K]`: `[t ; v]`.
    public let local: [Float]
}

/// The alignment net of one post: scores, the two attentions and the pair-wise cosines.
///
/// Works on the post's N valid words only, so nothing needs masking: that equals the spec's
/// padded form, where padded words get probability 0 in the softmax over words and t_j = 0.
/// With N = 0 the softmax over words is empty: V^ = 0 (so v = 0) and t has no entries (choice).
struct AlignmentNet {
    /// [S] `[K, N]`.
    let scores: Tensor
    /// [V^] `[K, d]`.
    let attendedRegions: Tensor
    /// [T^] `[N, d]`.
    let attendedWords: Tensor
    /// [v] `[K]`.
    let regionSimilarity: [Float]
    /// [t] `[N]`.
    let wordSimilarity: [Float]

    /// `regions`: [V] `[K, d]`; `words`: [T] `[N, d]`.
    init(regions: Tensor, words: Tensor) {
        let k = regions.rowCount, n = words.rowCount, d = regions.lastDimension
        var scores = Tensor(zeros: [k, n])
        var attendedRegions = Tensor(zeros: [k, d])
        var attendedWords = Tensor(zeros: [n, d])
        if n > 0 && k > 0 {
            var overWords = [Float](repeating: 0, count: k * n)     // softmax of S's rows
            var overRegions = [Float](repeating: 0, count: n * k)   // softmax of Sᵀ's rows
            regions.data.withUnsafeBufferPointer { vBuffer in
                words.data.withUnsafeBufferPointer { tBuffer in
                    guard let v = vBuffer.baseAddress, let t = tBuffer.baseAddress else { return }
                    scores.data.withUnsafeMutableBufferPointer { sBuffer in
                        guard let s = sBuffer.baseAddress else { return }
                        // S = V Tᵀ, no scaling.
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(k), Int32(n), Int32(d),
                                    1, v, Int32(d), t, Int32(d), 0, s, Int32(n))
                        for i in 0..<k {
                            for j in 0..<n {
                                overWords[i * n + j] = s[i * n + j]
                                overRegions[j * k + i] = s[i * n + j]
                            }
                        }
                    }
                    overWords.withUnsafeMutableBufferPointer { aBuffer in
                        attendedRegions.data.withUnsafeMutableBufferPointer { out in
                            guard let a = aBuffer.baseAddress, let o = out.baseAddress else { return }
                            // V^ = softmax_over_words(S) T
                            Softmax.rows(a, rows: k, width: n, mask: nil)
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(k), Int32(d), Int32(n),
                                        1, a, Int32(n), t, Int32(d), 0, o, Int32(d))
                        }
                    }
                    overRegions.withUnsafeMutableBufferPointer { bBuffer in
                        attendedWords.data.withUnsafeMutableBufferPointer { out in
                            guard let b = bBuffer.baseAddress, let o = out.baseAddress else { return }
                            // T^ = softmax_over_regions(S)ᵀ V
                            Softmax.rows(b, rows: n, width: k, mask: nil)
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(d), Int32(k),
                                        1, b, Int32(k), v, Int32(d), 0, o, Int32(d))
                        }
                    }
                }
            }
        }
        self.scores = scores
        self.attendedRegions = attendedRegions
        self.attendedWords = attendedWords
        self.regionSimilarity = Self.rowCosines(regions, attendedRegions)
        self.wordSimilarity = Self.rowCosines(words, attendedWords)
    }

    /// Smallest norm used in a cosine's denominator, as `torch.nn.functional.cosine_similarity`'s
    /// eps: a zero vector (a region all of whose ReLU outputs are 0) then has cosine 0, not NaN.
    static let cosineEpsilon: Float = 1e-8

    /// `cos(a_i, b_i)` for each row i: `a·b / (max(|a|, eps) · max(|b|, eps))`.
    static func rowCosines(_ a: Tensor, _ b: Tensor) -> [Float] {
        let d = a.lastDimension
        return (0..<a.rowCount).map { i in
            var dot: Float = 0, aa: Float = 0, bb: Float = 0
            for c in (i * d)..<((i + 1) * d) {
                dot += a.data[c] * b.data[c]
                aa += a.data[c] * a.data[c]
                bb += b.data[c] * b.data[c]
            }
            return dot / (max(aa.squareRoot(), cosineEpsilon) * max(bb.squareRoot(), cosineEpsilon))
        }
    }
}
