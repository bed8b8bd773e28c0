extension CLFAHead {
    /// Builds the head from its weights (the authors' tensor names) and config.
    ///
    /// Every size comes from the weight shapes: `d_t` and the hidden width `h` from `mlp_text`,
    /// `d_i` from `mlp_image` (absent: a text-only head), the layers from which
    /// `attention_net.layer.{i}` tensors exist, the labels from `classifier`. Each error names the
    /// tensor at fault.
    public init(weights file: SafeTensorsFile, config: CLFAConfig) throws(ModelLoadError) {
        // Every width is implied by another, so a shape error says what they must agree on.
        let vb = WeightReader(file: file).explainingShapes(Self.shapeAdvice)
        let eps = config.layerNormEps
        let mlpText = try Self.mappingNet(vb.pp("mlp_text"), hiddenWidth: nil)
        let hidden = mlpText.fc2.outFeatures
        var mlpImage: CLFAMappingNet?
        if vb.hasTensors(under: "mlp_image") {
            mlpImage = try Self.mappingNet(vb.pp("mlp_image"), hiddenWidth: hidden)
        }
        var mappedNoImageToken: Tensor?
        if let mlpImage, config.noImage == .learnedToken {
            let name = Self.noImageTokenName
            guard vb.contains(name) else {
                throw .inconsistent(detail: "\(file.path) has no tensor '\(name)' but the config's no_image is \"learned_token\": export the trained token with the head, or set \"no_image\": \"text_only\"")
            }
            let token = try vb.tensor(name, shape: [-1, mlpImage.fc1.inFeatures])
            guard token.rowCount > 0 else {
                throw .inconsistent(detail: "tensor '\(name)' in \(file.path) has no rows; a learned no-image token needs at least one")
            }
            // The token is constant: map it once here rather than on every batch.
            do { mappedNoImageToken = try mlpImage(token) } catch { throw .inconsistent(detail: "mapping '\(name)': \(error)") }
        }
        let layers = try Self.layers(vb.pp("attention_net"), hidden: hidden, heads: config.attentionHeads, eps: eps,
                                     hasImageBranch: mlpImage != nil)
        let classifier = try vb.linear("classifier", shape: [-1, hidden])
        guard classifier.outFeatures >= 2 else {
            throw .inconsistent(detail: "tensor 'classifier.weight' in \(file.path) has \(classifier.outFeatures) output(s); a classifier needs at least 2 labels")
        }
        self.init(config: config, mlpText: mlpText, mlpImage: mlpImage, mappedNoImageToken: mappedNoImageToken,
                  layers: layers, classifier: classifier)
    }

    static let noImageTokenName = "no_image_token"
    static let shapeAdvice = "every attention, feed-forward and classifier tensor must use the hidden width of mlp_text.fc2's output, and each product must take the previous one's output; was the head exported from another configuration?"
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

    /// `fc1`, `fc2` of a mapping net; the output width must be `hiddenWidth` when given.
    private static func mappingNet(_ vb: WeightReader, hiddenWidth: Int?) throws(ModelLoadError) -> CLFAMappingNet {
        let fc1 = try vb.linear("fc1", shape: [-1, -1])
        let fc2 = try vb.linear("fc2", shape: [hiddenWidth ?? -1, fc1.outFeatures])
        return CLFAMappingNet(fc1: fc1, fc2: fc2)
    }

    /// `layer.0 ..< n` of `vb` (`attention_net.`), each with the sub-layers whose tensors exist.
    private static func layers(_ vb: WeightReader, hidden: Int, heads: Int, eps: Float,
                               hasImageBranch: Bool) throws(ModelLoadError) -> [CLFALayer] {
        let numbered = vb.pp("layer")
        let count = numbered.numberedCount()
        // Every attention_net tensor must belong to a counted layer and be a known CLFA tensor, so
        // a renamed or gapped checkpoint fails here instead of loading with sub-layers silently missing.
        if let name = vb.firstUnexpectedName(numbered: "layer", count: count, allowed: knownLayerTensors) {
            throw .inconsistent(detail: "tensor '\(name)' in \(vb.file.path) is not a CLFA layer tensor (layers 0..<\(count) found, each with textSelfAttn/imageCrossAttn .bertCoAttn.{query,key,value} and .output.{dense,LayerNorm}, intermediate.dense, output.{dense,LayerNorm}): rename it or remove it")
        }
        var layers: [CLFALayer] = []
        for i in 0..<count {
            let layer = numbered.pp("\(i)")
            let textSelf = layer.hasTensors(under: "textSelfAttn")
                ? try attention(layer.pp("textSelfAttn"), hidden: hidden, heads: heads, eps: eps) : nil
            var imageCross: CLFAAttentionSubLayer?
            if layer.hasTensors(under: "imageCrossAttn") {
                guard hasImageBranch else {
                    throw .inconsistent(detail: "\(vb.file.path) has '\(layer.prefix)imageCrossAttn' but no image mapping net (mlp_image.fc1/fc2): export mlp_image with the head, or drop the imageCrossAttn tensors for a text-only head")
                }
                imageCross = try attention(layer.pp("imageCrossAttn"), hidden: hidden, heads: heads, eps: eps)
            }
            var feedForward: CLFAFeedForward?
            if layer.hasTensors(under: "intermediate") || layer.hasTensors(under: "output") {
                let intermediate = try layer.linear("intermediate.dense", shape: [-1, hidden])
                feedForward = CLFAFeedForward(
                    intermediate: intermediate,
                    output: try layer.linear("output.dense", shape: [hidden, intermediate.outFeatures]),
                    norm: try layer.layerNorm("output.LayerNorm", width: hidden, eps: eps))
            }
            layers.append(CLFALayer(textSelfAttention: textSelf, imageCrossAttention: imageCross, feedForward: feedForward))
        }
        return layers
    }

    /// One attention sub-layer from `vb` (`…textSelfAttn.` or `…imageCrossAttn.`); its width A
    /// comes from the query weight and must split into `heads`.
    private static func attention(_ vb: WeightReader, hidden: Int, heads: Int, eps: Float) throws(ModelLoadError) -> CLFAAttentionSubLayer {
        let projections = vb.pp("bertCoAttn")
        let query = try projections.linear("query", shape: [-1, hidden])
        let width = query.outFeatures
        guard heads > 0, width % heads == 0 else {
            throw .inconsistent(detail: "tensor '\(projections.fullName("query.weight"))' in \(vb.file.path) projects to \(width), which does not split into attention_heads \(heads): fix attention_heads in the head's config.json")
        }
        let key = try projections.linear("key", shape: [width, hidden])
        let value = try projections.linear("value", shape: [width, hidden])
        let keyValue: Linear
        do {
            keyValue = try Linear(weight: Tensor(shape: [2 * width, hidden], data: key.weight.data + value.weight.data),
                                  bias: (key.bias ?? []) + (value.bias ?? []))
        } catch {
            throw .inconsistent(detail: "\(vb.fullName("bertCoAttn")) key and value: \(error)")
        }
        return CLFAAttentionSubLayer(query: query, keyValue: keyValue,
                                     output: try vb.linear("output.dense", shape: [hidden, width]),
                                     norm: try vb.layerNorm("output.LayerNorm", width: hidden, eps: eps), heads: heads)
    }
}
