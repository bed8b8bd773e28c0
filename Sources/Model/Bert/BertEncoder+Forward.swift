/// The BERT forward pass: how a batch is cut up and run, then the layers themselves.
///
/// Two choices:
/// - Packed rows: posts run with their tokens back to back. Every product and norm works row by
///   row and attention runs per post over its own length, so padding rows would only be wasted
///   work (a fifth to a half of the rows in a batch of tweets). Outputs are padded at the end.
/// - With `threads > 1` and enough rows, the posts are split into one group per thread, each run
///   single-threaded start to finish: no hand-offs between the dozens of kernels of a pass. A
///   short batch (one post) instead splits every kernel across the threads. `bench/model` measures
///   the whole pass at batch 1, 8 and 32 (its README has the figures behind this choice).
extension BertEncoder {
    /// Below this many rows per thread a batch splits its kernels instead of its posts.
    static let minimumRowsPerThread = 96

    /// Runs the encoder on a batch of id sequences (each `[CLS] … [SEP]`, unpadded).
    ///
    /// - Parameters:
    ///   - keepStages: also return the embedding output and every layer's output.
    ///   - inputsOf: layers whose input to keep (packed, `BertOutput.layerInputs`), for heads
    ///     that run their own adapted copy of the layers from there (`BertAdapter`).
    ///   - threads: the threads the pass may use at once; with more than 1, set
    ///     `BLASThreads.set(1)` so the threads' sgemm calls do not each start OpenBLAS threads.
    public func forward(_ ids: [[Int]], keepStages: Bool = false, keepingInputsOf inputsOf: Set<Int> = [],
                        threads: Int = 1) throws(InferenceError) -> BertOutput {
        let lengths = ids.map(\.count)
        let length = lengths.max() ?? 0
        guard length <= maxPositions else {
            throw .tooManyTokens(tokens: length, positions: maxPositions)
        }
        let total = lengths.reduce(0, +)
        let splitPosts = threads > 1 && ids.count >= threads && total >= threads * Self.minimumRowsPerThread
        let groups = splitPosts ? Self.balancedGroups(lengths, parts: threads) : [0..<ids.count]
        let innerThreads = splitPosts ? 1 : threads

        // Each group's packed stages (or only its final states), written by its own thread.
        var results = [Result<PackedRun, InferenceError>](repeating: .success(PackedRun()), count: groups.count)
        results.withUnsafeMutableBufferPointer { slots in
            Parallel.forEachSlice(count: groups.count, threads: groups.count) { range in
                for g in range {
                    do throws(InferenceError) {
                        let posts = groups[g]
                        var x = try embed(Array(ids[posts]), lengths: Array(lengths[posts]))
                        slots[g] = .success(try runLayers(0..<layers.count, on: &x, lengths: Array(lengths[posts]),
                                                          keepStages: keepStages, inputsOf: inputsOf, threads: innerThreads))
                    } catch {
                        slots[g] = .failure(error)
                    }
                }
            }
        }
        var parts: [PackedRun] = []
        for result in results {
            switch result {
            case let .success(run): parts.append(run)
            case let .failure(error): throw error
            }
        }
        // Stage s of the whole batch: the groups' rows of that stage, one after the other.
        let stageCount = parts.first?.stages.count ?? 0
        let packed = (0..<stageCount).map { s in Tensor(stacking: parts.map { $0.stages[s] }) }
        var layerInputs: [Int: Tensor] = [:]
        for layer in inputsOf where layer < layers.count {
            layerInputs[layer] = Tensor(stacking: parts.compactMap { $0.inputs[layer] })
        }
        return try output(packed, lengths: lengths, keepStages: keepStages, layerInputs: layerInputs)
    }

    /// Runs layers `first...` over `packedInput` (`[sum(lengths), d]`, posts back to back): the
    /// rest of a pass whose input to layer `first` another encoder kept (`keepingInputsOf`).
    public func forward(fromLayer first: Int, packedInput: Tensor, lengths: [Int],
                        threads: Int = 1) throws(InferenceError) -> BertOutput {
        guard first >= 0, first <= layers.count, packedInput.rowCount == lengths.reduce(0, +),
              packedInput.lastDimension == hiddenSize else {
            throw .shapeMismatch(expected: [lengths.reduce(0, +), hiddenSize], found: packedInput.shape,
                                 context: "BERT layer \(first) input")
        }
        var x = packedInput
        let run = try runLayers(first..<layers.count, on: &x, lengths: lengths, keepStages: false, inputsOf: [], threads: threads)
        return try output(run.stages, lengths: lengths, keepStages: false, layerInputs: [:])
    }

    /// The padded outputs of packed stages (the last is the final states).
    private func output(_ packed: [Tensor], lengths: [Int], keepStages: Bool, layerInputs: [Int: Tensor]) throws(InferenceError) -> BertOutput {
        let length = lengths.max() ?? 0
        let d = hiddenSize
        let padded = packed.map { Self.padded($0, width: d, lengths: lengths, to: length) }
        let states = padded.last ?? Tensor(zeros: [lengths.count, length, d])
        let sentences = try Pooling.maskedMean(states.reshapedRows(d), lengths: lengths, paddedLength: length)
        return BertOutput(tokenStates: states, sentenceVectors: sentences, lengths: lengths,
                          paddedLength: length, stages: keepStages ? padded : [], layerInputs: layerInputs)
    }

    /// One group's packed stages and kept layer inputs.
    private struct PackedRun {
        var stages: [Tensor] = []
        var inputs: [Int: Tensor] = [:]
    }

    /// The embedding block over packed posts: `[rows, d]`.
    private func embed(_ ids: [[Int]], lengths: [Int]) throws(InferenceError) -> Tensor {
        var x = try Gather.rows(of: wordEmbeddings, ids: ids.flatMap { $0 }, context: "word embeddings")
        addPositionAndType(to: &x, lengths: lengths)
        try embeddingNorm.apply(to: &x, adding: nil)
        return x
    }

    /// Layers `range` over packed posts `x`; stages are the input followed by every layer's output
    /// when `keepStages`, else only the last output.
    private func runLayers(_ range: Range<Int>, on x: inout Tensor, lengths: [Int], keepStages: Bool,
                           inputsOf: Set<Int>, threads: Int) throws(InferenceError) -> PackedRun {
        var run = PackedRun()
        if keepStages { run.stages.append(x) }
        for index in range {
            if inputsOf.contains(index) { run.inputs[index] = x }
            let layer = layers[index]
            let qkv = try layer.qkv(x, threads: threads)
            let context = try MultiHeadAttention.selfAttention(
                packedQKV: qkv, lengths: lengths, heads: config.numAttentionHeads, threads: threads)
            // The three products below leave their bias to the pass that follows them (saves
            // a pass over each output; the intermediate one is megabytes at batch 32).
            var attended = try layer.attentionOutput(context, threads: threads, includingBias: false)
            try layer.attentionNorm.apply(to: &attended, adding: x, bias: layer.attentionOutput.bias, threads: threads)
            var hidden = try layer.intermediate(attended, threads: threads, includingBias: false)
            if let bias = layer.intermediate.bias {
                try activation.apply(&hidden, bias: bias, threads: threads)
            } else {
                activation.apply(&hidden, threads: threads)
            }
            var out = try layer.output(hidden, threads: threads, includingBias: false)
            try layer.outputNorm.apply(to: &out, adding: attended, bias: layer.output.bias, threads: threads)
            x = out
            if keepStages { run.stages.append(x) }
        }
        if !keepStages { run.stages = [x] }
        return run
    }

    /// Adds position embedding t and token type 0 to the t-th row of every packed post.
    private func addPositionAndType(to x: inout Tensor, lengths: [Int]) {
        let d = hiddenSize
        positionEmbeddings.data.withUnsafeBufferPointer { pb in
            tokenTypeEmbeddings.data.withUnsafeBufferPointer { tb in
                x.data.withUnsafeMutableBufferPointer { xb in
                    guard let p = pb.baseAddress, let t = tb.baseAddress, var row = xb.baseAddress else { return }
                    for n in lengths {
                        for pos in 0..<n {
                            Vec.add(row, t, count: d)
                            Vec.add(row, p + pos * d, count: d)
                            row += d
                        }
                    }
                }
            }
        }
    }

    /// Contiguous groups of posts, one per part, with nearly equal numbers of rows.
    static func balancedGroups(_ lengths: [Int], parts: Int) -> [Range<Int>] {
        let total = lengths.reduce(0, +)
        var groups: [Range<Int>] = []
        var start = 0, seen = 0
        for part in 1...max(1, parts) where start < lengths.count {
            let target = total * part / max(1, parts)
            var end = start
            // Take posts while the group's end stays nearest its share; leave one post per later group.
            while end < lengths.count - (parts - part), end == start || seen + lengths[end] / 2 <= target {
                seen += lengths[end]
                end += 1
            }
            if part == parts { while end < lengths.count { seen += lengths[end]; end += 1 } }
            groups.append(start..<end)
            start = end
        }
        return groups
    }

    /// Packed rows `[sum(lengths), d]` laid out as `[B, length, d]`, padding rows zero.
    private static func padded(_ packed: Tensor, width d: Int, lengths: [Int], to length: Int) -> Tensor {
        var out = Tensor(zeros: [lengths.count, length, d])
        packed.data.withUnsafeBufferPointer { src in
            out.data.withUnsafeMutableBufferPointer { dst in
                guard var s = src.baseAddress, let o = dst.baseAddress else { return }
                for (b, n) in lengths.enumerated() where n > 0 {
                    (o + b * length * d).update(from: s, count: n * d)
                    s += n * d
                }
            }
        }
        return out
    }
}
