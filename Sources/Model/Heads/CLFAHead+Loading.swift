extension CLFAHead {
    /// Builds the head from its weights (the authors' tensor names) and config.
    ///
    /// Every size comes from the weight shapes: `d_t` and the hidden width `h` from `mlp_text`,
    /// `d_i` from `mlp_image` (absent: a text-only head), the layers from which
    /// `attention_net.layer.{i}` tensors exist, the labels from `classifier`. Each error names the
    /// tensor at fault.
    public init(weights file: SafeTensorsFile, config: CLFAConfig) throws(ModelLoadError) {
        let reader = CLFAWeightReader(file: file, eps: config.layerNormEps)
        let mlpText = try reader.mappingNet("mlp_text", hiddenWidth: nil)
        let hidden = mlpText.fc2.outFeatures
        var mlpImage: CLFAMappingNet?
        if reader.has(prefix: "mlp_image.") {
            mlpImage = try reader.mappingNet("mlp_image", hiddenWidth: hidden)
        }
        var mappedNoImageToken: Tensor?
        if let mlpImage, config.noImage == .learnedToken {
            let name = CLFAWeightReader.noImageToken
            guard file.contains(name) else {
                throw .inconsistent(detail: "\(file.path) has no tensor '\(name)' but the config's no_image is \"learned_token\": export the trained token with the head, or set \"no_image\": \"text_only\"")
            }
            let token = try reader.tensor(name, shape: [-1, mlpImage.fc1.inFeatures])
            guard token.rowCount > 0 else {
                throw .inconsistent(detail: "tensor '\(name)' in \(file.path) has no rows; a learned no-image token needs at least one")
            }
            // The token is constant: map it once here rather than on every batch.
            do { mappedNoImageToken = try mlpImage(token) } catch { throw .inconsistent(detail: "mapping '\(name)': \(error)") }
        }
        let layers = try reader.layers(hidden: hidden, heads: config.attentionHeads, hasImageBranch: mlpImage != nil)
        let classifier = try reader.linear("classifier", outputs: nil, inputs: hidden)
        guard classifier.outFeatures >= 2 else {
            throw .inconsistent(detail: "tensor 'classifier.weight' in \(file.path) has \(classifier.outFeatures) output(s); a classifier needs at least 2 labels")
        }
        self.init(config: config, mlpText: mlpText, mlpImage: mlpImage, mappedNoImageToken: mappedNoImageToken,
                  layers: layers, classifier: classifier)
    }
}

/// Reads CLFA tensors from a safetensors file, turning every problem into a `ModelLoadError` that
/// names the tensor.
struct CLFAWeightReader {
    static let layerPrefix = "attention_net.layer."
    static let noImageToken = "no_image_token"
    static let subLayers = ["textSelfAttn", "imageCrossAttn"]
    /// What a layer may hold, relative to `attention_net.layer.{i}.`.
    static let knownLayerTensors: Set<String> = {
        var names: Set<String> = []
        func linear(_ n: String) { names.formUnion([n + ".weight", n + ".bias"]) }
        func norm(_ n: String) { names.formUnion([n + ".weight", n + ".bias", n + ".gamma", n + ".beta"]) }
        for sub in subLayers {
            for projection in ["query", "key", "value"] { linear("\(sub).bertCoAttn.\(projection)") }
            linear("\(sub).output.dense")
            norm("\(sub).output.LayerNorm")
        }
        linear("intermediate.dense")
        linear("output.dense")
        norm("output.LayerNorm")
        return names
    }()

    let file: SafeTensorsFile
    let eps: Float

    func has(prefix: String) -> Bool { file.entries.keys.contains { $0.hasPrefix(prefix) } }

    func tensor(_ name: String, shape: [Int]) throws(ModelLoadError) -> Tensor {
        do { return try file.tensor(name, expectedShape: shape) } catch { throw .weights(error) }
    }

    /// `name.weight` (`[out, in]`) and `name.bias`; a width that is given must match.
    func linear(_ name: String, outputs: Int?, inputs: Int?) throws(ModelLoadError) -> Linear {
        let weight = try tensor(name + ".weight", shape: [-1, -1])
        let expected = [outputs ?? weight.shape[0], inputs ?? weight.shape[1]]
        guard weight.shape == expected else {
            throw .inconsistent(detail: "tensor '\(name).weight' in \(file.path) has shape \(weight.shape), expected \(expected): every attention, feed-forward and classifier tensor must use the hidden width of mlp_text.fc2's output, and each product must take the previous one's output; was the head exported from another configuration?")
        }
        let bias = try tensor(name + ".bias", shape: [expected[0]])
        do { return try Linear(weight: weight, bias: bias.data) } catch { throw .inconsistent(detail: "\(name): \(error)") }
    }

    /// A LayerNorm named `name` (`weight`/`bias`, or old `gamma`/`beta`).
    func layerNorm(_ name: String, width: Int) throws(ModelLoadError) -> LayerNorm {
        let old = !file.contains(name + ".weight") && file.contains(name + ".gamma")
        let gamma = try tensor(name + (old ? ".gamma" : ".weight"), shape: [width])
        let beta = try tensor(name + (old ? ".beta" : ".bias"), shape: [width])
        do { return try LayerNorm(gamma: gamma.data, beta: beta.data, eps: eps) } catch { throw .inconsistent(detail: "\(name): \(error)") }
    }

    /// `name.fc1`, `name.fc2`; the output width must be `hiddenWidth` when given.
    func mappingNet(_ name: String, hiddenWidth: Int?) throws(ModelLoadError) -> CLFAMappingNet {
        let fc1 = try linear(name + ".fc1", outputs: nil, inputs: nil)
        let fc2 = try linear(name + ".fc2", outputs: hiddenWidth, inputs: fc1.outFeatures)
        return CLFAMappingNet(fc1: fc1, fc2: fc2)
    }

    /// `attention_net.layer.0 ..< n`, each with the sub-layers whose tensors exist.
    func layers(hidden: Int, heads: Int, hasImageBranch: Bool) throws(ModelLoadError) -> [CLFALayer] {
        var count = 0
        while has(prefix: "\(Self.layerPrefix)\(count).") { count += 1 }
        try checkLayerNames(count: count)
        var layers: [CLFALayer] = []
        for i in 0..<count {
            let p = "\(Self.layerPrefix)\(i)."
            let textSelf = has(prefix: p + "textSelfAttn.")
                ? try attention(p + "textSelfAttn", hidden: hidden, heads: heads) : nil
            var imageCross: CLFAAttentionSubLayer?
            if has(prefix: p + "imageCrossAttn.") {
                guard hasImageBranch else {
                    throw .inconsistent(detail: "\(file.path) has '\(p)imageCrossAttn' but no image mapping net (mlp_image.fc1/fc2): export mlp_image with the head, or drop the imageCrossAttn tensors for a text-only head")
                }
                imageCross = try attention(p + "imageCrossAttn", hidden: hidden, heads: heads)
            }
            var feedForward: CLFAFeedForward?
            if has(prefix: p + "intermediate.") || has(prefix: p + "output.") {
                let intermediate = try linear(p + "intermediate.dense", outputs: nil, inputs: hidden)
                feedForward = CLFAFeedForward(
                    intermediate: intermediate,
                    output: try linear(p + "output.dense", outputs: hidden, inputs: intermediate.outFeatures),
                    norm: try layerNorm(p + "output.LayerNorm", width: hidden))
            }
            layers.append(CLFALayer(textSelfAttention: textSelf, imageCrossAttention: imageCross, feedForward: feedForward))
        }
        return layers
    }

    /// One attention sub-layer; its width A comes from the query weight and must split into `heads`.
    private func attention(_ p: String, hidden: Int, heads: Int) throws(ModelLoadError) -> CLFAAttentionSubLayer {
        let query = try linear(p + ".bertCoAttn.query", outputs: nil, inputs: hidden)
        let width = query.outFeatures
        guard heads > 0, width % heads == 0 else {
            throw .inconsistent(detail: "tensor '\(p).bertCoAttn.query.weight' in \(file.path) projects to \(width), which does not split into attention_heads \(heads): fix attention_heads in the head's config.json")
        }
        let key = try linear(p + ".bertCoAttn.key", outputs: width, inputs: hidden)
        let value = try linear(p + ".bertCoAttn.value", outputs: width, inputs: hidden)
        let keyValue: Linear
        do {
            keyValue = try Linear(weight: Tensor(shape: [2 * width, hidden], data: key.weight.data + value.weight.data),
                                  bias: (key.bias ?? []) + (value.bias ?? []))
        } catch {
            throw .inconsistent(detail: "\(p).bertCoAttn key and value: \(error)")
        }
        return CLFAAttentionSubLayer(query: query, keyValue: keyValue,
                                     output: try linear(p + ".output.dense", outputs: hidden, inputs: width),
                                     norm: try layerNorm(p + ".output.LayerNorm", width: hidden), heads: heads)
    }

    /// Every `attention_net.*` tensor must belong to a counted layer and be a known CLFA tensor, so
    /// a renamed or gapped checkpoint fails here instead of loading with sub-layers silently missing.
    private func checkLayerNames(count: Int) throws(ModelLoadError) {
        for name in file.names where name.hasPrefix("attention_net.") {
            let rest = name.dropFirst(Self.layerPrefix.count)
            let parts = rest.split(separator: ".", maxSplits: 1)
            let known = name.hasPrefix(Self.layerPrefix) && parts.count == 2
                && Int(parts[0]).map { $0 >= 0 && $0 < count } == true
                && Self.knownLayerTensors.contains(String(parts[1]))
            guard known else {
                throw .inconsistent(detail: "tensor '\(name)' in \(file.path) is not a CLFA layer tensor (layers 0..<\(count) found, each with textSelfAttn/imageCrossAttn .bertCoAttn.{query,key,value} and .output.{dense,LayerNorm}, intermediate.dense, output.{dense,LayerNorm}): rename it or remove it")
            }
        }
    }
}
