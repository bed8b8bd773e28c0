import Foundation

/// The AnANet image-text correlation head (MODEL-SPEC.md, "Correlation head: AnANet"; labels
/// 0 = irrelevant, 1 = implicit, 2 = explicit), inference path only:
///
/// ```
/// V = ReLU(regions Wv + bv)                         [K, d]
/// T = BiGRU(e)                                      [N, d]  e_j = [glove(w_j) ; ctx(w_j)], see WordFeatures
/// r_g = [W mean(V) ; W mean(T)]                     association net
/// S = V Tᵀ;  V^ = softmax_words(S) T;  T^ = softmax_regions(S)ᵀ V
/// r_l = [cos(T_j, T^_j) (N_max, 0 past N) ; cos(V_i, V^_i) (K)]    alignment net
/// logits = λ (W_g r_g + b_g) + η (W_l r_l + b_l)
/// ```
///
/// Tensor names (PyTorch `[out, in]` layout, as a module with these attributes would save them):
///
/// | name | shape | role |
/// |---|---|---|
/// | `region_proj.weight`, `region_proj.bias` | `[d, d_r]`, `[d]` | Wv, bv |
/// | `gru.weight_ih_l0`, `gru.weight_hh_l0` | `[3h, G + D]`, `[3h, h]` | forward GRU, gates r z n, h = d/2 |
/// | `gru.bias_ih_l0`, `gru.bias_hh_l0` | `[3h]` each | |
/// | the same four with `_reverse` | | reverse direction |
/// | `association.proj.weight` | `[P, d]` | W, shared by both modalities, no bias (P = 200 in the paper) |
/// | `association.classifier.weight`, `.bias` | `[C, 2P]`, `[C]` | W_g, b_g |
/// | `alignment.classifier.weight`, `.bias` | `[C, N_max + K]`, `[C]` | W_l, b_l |
///
/// Every size comes from these shapes except K, which the config gives (N_max is then the
/// alignment classifier's width minus K). A post with no words has f_txt = 0, V^ = 0 (so v = 0)
/// and t = 0 (choice; the numpy reference does the same). The same image region count K is
/// required of every batch.
public struct AnANetHead: Sendable {
    /// λ, η and K.
    public let config: AnANetConfig
    let regionProjection: Linear
    let gru: BidirectionalGRU
    let associationProjection: Linear
    let associationClassifier: Linear
    let alignmentClassifier: Linear

    /// N_max: the word slots of the alignment net.
    public var maxWords: Int { alignmentClassifier.inFeatures - config.regionCount }
    /// K: image regions per post.
    public var regionCount: Int { config.regionCount }
    /// d_r: the width of one image region vector.
    public var regionWidth: Int { regionProjection.inFeatures }
    /// The width of a word's features e_j: GloVe dims + text-encoder width.
    public var wordWidth: Int { gru.forward.inputSize }
    /// d: the joint width of V and T.
    public var width: Int { regionProjection.outFeatures }
    /// C: the number of labels.
    public var labelCount: Int { associationClassifier.outFeatures }

    /// Loads `config.json` and `model.safetensors` from a head folder.
    public init(directory: URL) throws(ModelLoadError) {
        let checkpoint = try Checkpoint<AnANetConfig>(directory: directory)
        try self.init(weights: checkpoint.weights, config: checkpoint.config)
    }

    /// Builds the head from opened weights, checking every shape against the others.
    public init(weights file: SafeTensorsFile, config: AnANetConfig) throws(ModelLoadError) {
        guard config.regionCount > 0 else {
            throw .inconsistent(detail: "AnANet config: region_count must be positive, is \(config.regionCount)")
        }
        let vb = WeightReader(file: file)
        let regionProjection = try vb.linear("region_proj", shape: [-1, -1])
        let d = regionProjection.outFeatures
        guard d % 2 == 0 else {
            throw .inconsistent(detail: "region_proj.weight in \(file.path) has \(d) rows; the BiGRU's two directions of d/2 need an even d")
        }
        let gru = vb.pp("gru")
        let forward = try Self.gruDirection(gru, suffix: "", hidden: d / 2, inputWidth: -1)
        let backward = try Self.gruDirection(gru, suffix: "_reverse", hidden: d / 2, inputWidth: forward.inputSize)
        let projection = try vb.linear("association.proj", shape: [-1, d], bias: false)
        let association = try vb.linear("association.classifier", shape: [-1, 2 * projection.outFeatures])
        let alignment = try vb.linear("alignment.classifier", shape: [association.outFeatures, -1])
        guard alignment.inFeatures > config.regionCount else {
            throw .inconsistent(detail: "alignment.classifier.weight in \(file.path) reads \(alignment.inFeatures) values, which leaves no word slots after region_count \(config.regionCount) (it must be N_max + K)")
        }
        self.regionProjection = regionProjection
        do { self.gru = try BidirectionalGRU(forward: forward, backward: backward) } catch {
            throw .loading(error, file: file.path)
        }
        self.associationProjection = projection
        self.associationClassifier = association
        self.alignmentClassifier = alignment
        self.config = config
    }

    /// One GRU direction's four tensors from `vb` (`gru.`); `inputWidth` -1 takes it from `weight_ih`.
    private static func gruDirection(_ vb: WeightReader, suffix: String, hidden h: Int,
                                     inputWidth: Int) throws(ModelLoadError) -> GRUDirection {
        let input = try vb.tensor("weight_ih_l0" + suffix, shape: [3 * h, inputWidth])
        let recurrent = try vb.tensor("weight_hh_l0" + suffix, shape: [3 * h, h])
        let inputBias = try vb.vector("bias_ih_l0" + suffix, count: 3 * h)
        let recurrentBias = try vb.vector("bias_hh_l0" + suffix, count: 3 * h)
        do {
            return try GRUDirection(input: Linear(weight: input, bias: inputBias),
                                    hidden: Linear(weight: recurrent, bias: recurrentBias))
        } catch {
            // Unreachable after the shape checks above; reported against the input weight.
            throw .weights(.shapeMismatch(file: vb.file.path, tensor: vb.fullName("weight_ih_l0" + suffix),
                                          expected: [3 * h, inputWidth], found: input.shape))
        }
    }

    /// Classifies a batch of B posts.
    ///
    /// - Parameters:
    ///   - regions: `[B, K, d_r]`, the image encoder's region vectors.
    ///   - words: per post its `[N_b, wordWidth]` feature rows (`WordFeatures.rows`), 0 <= N_b <= N_max.
    ///   - keepStages: also return every intermediate value, per post.
    public func forward(regions: Tensor, words: [Tensor], keepStages: Bool = false) throws(InferenceError) -> AnANetOutput {
        let batch = words.count, k = regionCount, d = width, features = wordWidth
        guard regions.shape == [batch, k, regionWidth] else {
            throw .shapeMismatch(expected: [batch, k, regionWidth], found: regions.shape, context: "AnANet regions")
        }
        // The words of all posts back to back, so the GRU's input projection is one product.
        var sequences: [Range<Int>] = []
        var flat: [Float] = []
        flat.reserveCapacity(words.reduce(0) { $0 + $1.count })
        for post in words {
            let n = post.rank == 2 ? post.shape[0] : -1
            guard n >= 0, n <= maxWords, post.shape[1] == features || n == 0 else {
                throw .shapeMismatch(expected: [maxWords, features], found: post.shape, context: "AnANet words of one post")
            }
            sequences.append((flat.count / features)..<(flat.count / features + n))
            flat.append(contentsOf: post.data)
        }
        var v = try regionProjection(regions)                          // [B, K, d]: one product for all regions
        Activation.relu.apply(&v)
        let x = Tensor(uncheckedShape: [flat.count / features, features], data: flat)
        let (forwardStates, backwardStates) = try gru(x, sequences: sequences)
        let t = try Self.sideBySide(forwardStates, backwardStates)     // [ΣN, d]

        // Association net: rows 2b and 2b+1 hold f_img and f_txt of post b, so the projection's
        // [2B, P] output read as [B, 2P] is r_g.
        var pooled = Tensor(zeros: [2 * batch, d])
        for b in 0..<batch {
            Self.meanOfRows(v, rows: (b * k)..<((b + 1) * k), into: &pooled, row: 2 * b)
            Self.meanOfRows(t, rows: sequences[b], into: &pooled, row: 2 * b + 1)
        }
        let global = try associationProjection(pooled).reshaped([batch, 2 * associationProjection.outFeatures])
        let associationLogits = try associationClassifier(global)

        // Alignment net, post by post (each has its own N).
        let slots = maxWords
        var local = Tensor(zeros: [batch, slots + k])
        var stages: [AnANetStages] = []
        for b in 0..<batch {
            let postRegions = v.rows((b * k)..<((b + 1) * k))
            let postWords = t.rows(sequences[b])
            let net = AlignmentNet(regions: postRegions, words: postWords)
            let row = b * (slots + k)
            local.data.replaceSubrange(row..<(row + net.wordSimilarity.count), with: net.wordSimilarity)
            local.data.replaceSubrange((row + slots)..<(row + slots + k), with: net.regionSimilarity)
            guard keepStages else { continue }
            let rowOf = { (m: Tensor, r: Int) in Array(m.data[(r * m.lastDimension)..<((r + 1) * m.lastDimension)]) }
            stages.append(AnANetStages(
                regions: postRegions, forwardStates: forwardStates.rows(sequences[b]),
                backwardStates: backwardStates.rows(sequences[b]), words: postWords,
                imageVector: rowOf(pooled, 2 * b), textVector: rowOf(pooled, 2 * b + 1), global: rowOf(global, b),
                scores: net.scores, attendedRegions: net.attendedRegions, attendedWords: net.attendedWords,
                regionSimilarity: net.regionSimilarity, wordSimilarity: rowOf(local, b).prefix(slots).map { $0 },
                local: rowOf(local, b)))
        }
        let alignmentLogits = try alignmentClassifier(local)

        var logits = associationLogits
        let lambda = Float(config.lambda), eta = Float(config.eta)
        for i in logits.data.indices { logits.data[i] = lambda * associationLogits.data[i] + eta * alignmentLogits.data[i] }
        var probabilities = logits
        Softmax.apply(&probabilities)
        return AnANetOutput(logits: logits, probabilities: probabilities, associationLogits: associationLogits,
                            alignmentLogits: alignmentLogits, stages: stages)
    }

    /// `[a_i ; b_i]` for each row i of two equal-height matrices.
    static func sideBySide(_ a: Tensor, _ b: Tensor) throws(InferenceError) -> Tensor {
        guard a.rowCount == b.rowCount else {
            throw .shapeMismatch(expected: [a.rowCount, b.lastDimension], found: b.shape, context: "side by side")
        }
        let wa = a.lastDimension, wb = b.lastDimension
        var out = [Float]()
        out.reserveCapacity(a.count + b.count)
        for r in 0..<a.rowCount {
            out.append(contentsOf: a.data[(r * wa)..<((r + 1) * wa)])
            out.append(contentsOf: b.data[(r * wb)..<((r + 1) * wb)])
        }
        return Tensor(uncheckedShape: [a.rowCount, wa + wb], data: out)
    }

    /// Writes the mean of `rows` of `m` into row `row` of `out`; leaves it zero for no rows.
    static func meanOfRows(_ m: Tensor, rows: Range<Int>, into out: inout Tensor, row: Int) {
        guard !rows.isEmpty else { return }
        let d = m.lastDimension
        let scale = 1 / Float(rows.count)
        for r in rows {
            for c in 0..<d { out.data[row * d + c] += m.data[r * d + c] }
        }
        for c in 0..<d { out.data[row * d + c] *= scale }
    }
}
