import Foundation

/// The outputs of one ViT forward pass over a batch of B images.
public struct ViTOutput: Sendable {
    /// `[B, 1 + N, d]`: the CLS token then the N patch tokens (row-major patch order), after the
    /// final LayerNorm (`last_hidden_state`).
    public let tokens: Tensor
    /// `[B, d]`: each image's CLS token after the final LayerNorm (not HF's tanh pooler).
    public let pooled: Tensor
    /// When requested: the patch projections `[B, N, d]`, the embedding output `[B, 1 + N, d]`
    /// (CLS prepended, positions added), then every layer's output `[B, 1 + N, d]`.
    public let stages: [Tensor]
}

/// A Vision Transformer image encoder (`vit` kind), Hugging Face `ViTModel` names
/// (google/vit-base-patch32-224-in21k, CLFA's image encoder), every size taken from the checkpoint.
///
/// Patches become tokens through one product: the non-overlapping p x p patches are laid out as
/// rows (im2col) and multiplied by the conv weight `[d, C, p, p]` read as `[d, C*p*p]`. Layers are
/// pre-LN (`x += attn(LN(x))`, `x += mlp(LN(x))`), the MLP uses exact GELU. The regions are all
/// 1 + N tokens after the final LayerNorm; the pooled vector is the CLS token among them. HF's
/// `pooler` (dense + tanh, trained only for in21k classification) is not used, so it is not loaded.
public struct ViTEncoder: ImageEncoder {
    struct Layer: Sendable {
        let normBefore: LayerNorm
        /// Query, key and value stacked into one `[3d, d]` product.
        let qkv: Linear
        let attentionOutput: Linear
        let normAfter: LayerNorm
        let intermediate: Linear
        let output: Linear
    }

    /// The checkpoint's configuration.
    public let config: ViTConfig
    /// How a decoded picture becomes this encoder's input (see `init(directory:)`).
    public let preprocess: ImagePreprocessConfig
    /// The conv weight `[d, C, p, p]` seen as `[d, C*p*p]`, with its bias.
    let patchProjection: Linear
    /// The learned CLS token, `d` values.
    let clsToken: [Float]
    /// `[1 + N, d]`: row 0 for CLS, row 1 + i for patch i.
    let positionEmbeddings: Tensor
    let layers: [Layer]
    let finalNorm: LayerNorm
    let activation: Activation

    /// A ViT has no classifier here; the in21k head is not part of `ViTModel`.
    public var classNames: [String]? { nil }
    /// Width of the token states.
    public var hiddenSize: Int { positionEmbeddings.lastDimension }
    /// Width of one region vector: the token width.
    public var regionWidth: Int { hiddenSize }
    /// Tokens per image: CLS plus the patches.
    public var tokenCount: Int { positionEmbeddings.rowCount }
    /// The number of transformer layers.
    public var layerCount: Int { layers.count }

    /// Loads `config.json`, `model.safetensors` and, when present, `preprocessor_config.json` (else
    /// the preprocessing is `ImagePreprocessConfig.clfaViT` at the model's image size).
    public init(directory: URL) throws(ModelLoadError) {
        let checkpoint = try Checkpoint<ViTConfig>(directory: directory)
        let preprocess = try ViTImageProcessorConfig.preprocessConfig(directory: directory, imageSize: checkpoint.config.imageSize)
        try self.init(weights: checkpoint.weights, config: checkpoint.config, preprocess: preprocess)
    }

    /// Builds the encoder from opened weights and a config, checking one against the other.
    ///
    /// - Parameter preprocess: the input preprocessing; `nil` means `ImagePreprocessConfig.clfaViT`
    ///   at the config's image size. Its size must be the config's image size.
    public init(weights file: SafeTensorsFile, config: ViTConfig, preprocess: ImagePreprocessConfig? = nil) throws(ModelLoadError) {
        let vb = WeightReader(file: file).optionalScope("vit", probe: "embeddings.cls_token")
        do {
            let embeddings = vb.pp("embeddings")
            let cls = try embeddings.tensor("cls_token", shape: [1, 1, -1])
            let d = cls.lastDimension
            guard d == config.hiddenSize else {
                throw ModelLoadError.inconsistent(detail: "config.json says hidden_size \(config.hiddenSize) but \(file.path) has a CLS token of width \(d)")
            }
            guard config.numAttentionHeads > 0, d % config.numAttentionHeads == 0 else {
                throw ModelLoadError.inconsistent(detail: "hidden_size \(d) is not a multiple of num_attention_heads \(config.numAttentionHeads)")
            }
            let image = config.imageSize, patch = config.patchSize, channels = config.numChannels
            guard patch.height > 0, patch.width > 0, image.height % patch.height == 0, image.width % patch.width == 0 else {
                throw ModelLoadError.inconsistent(detail: "image_size \(image.height)x\(image.width) is not a whole number of \(patch.height)x\(patch.width) patches")
            }
            let projection = embeddings.pp("patch_embeddings.projection")
            let conv = try projection.tensor("weight", shape: [d, channels, patch.height, patch.width])
            let convBias = try projection.vector("bias", count: d)
            patchProjection = try Linear(weight: conv.reshapedRows(channels * patch.height * patch.width), bias: convBias)
            clsToken = cls.data
            let tokens = 1 + config.patchGrid.rows * config.patchGrid.columns
            positionEmbeddings = try embeddings.tensor("position_embeddings", shape: [1, tokens, d]).reshapedRows(d)
            let eps = Float(config.layerNormEps)

            let layerScope = vb.pp("encoder.layer")
            let count = try layerScope.layerCount(marker: "attention.attention.query.weight", configSays: config.numHiddenLayers,
                                                  field: "num_hidden_layers")
            layers = try (0..<count).map { i throws(ModelLoadError) in
                try Self.layer(layerScope.pp("\(i)"), width: d, eps: eps, qkvBias: config.qkvBias)
            }
            finalNorm = try vb.layerNorm("layernorm", width: d, eps: eps)
        } catch {
            throw .loading(error, file: file.path)
        }
        guard let activation = Activation(huggingFaceName: config.hiddenAct) else {
            throw .inconsistent(detail: "hidden_act '\(config.hiddenAct)' is not supported (gelu, relu, quick_gelu)")
        }
        var resolved = preprocess ?? .clfaViT
        if preprocess == nil { (resolved.width, resolved.height) = (config.imageSize.width, config.imageSize.height) }
        guard resolved.width == config.imageSize.width, resolved.height == config.imageSize.height, resolved.layout == .nchw else {
            throw .inconsistent(detail: "the ViT's input is \(config.imageSize.height)x\(config.imageSize.width) NCHW but its preprocessing gives \(resolved.height)x\(resolved.width) \(resolved.layout.rawValue)")
        }
        self.activation = activation
        self.preprocess = resolved
        self.config = config
    }

    /// One layer from `vb` (`encoder.layer.i.`): `layernorm_before`, `attention.attention.{query,key,value}`,
    /// `attention.output.dense`, `layernorm_after`, `intermediate.dense`, `output.dense`.
    private static func layer(_ vb: WeightReader, width d: Int, eps: Float, qkvBias: Bool) throws(ModelLoadError) -> Layer {
        let projections = try ["query", "key", "value"].map { part throws(ModelLoadError) in
            try vb.linear("attention.attention." + part, shape: [d, d], bias: qkvBias)
        }
        let stacked = Tensor(uncheckedShape: [3 * d, d], data: projections.flatMap(\.weight.data))
        let intermediate = try vb.linear("intermediate.dense", shape: [-1, d])
        return Layer(
            normBefore: try vb.layerNorm("layernorm_before", width: d, eps: eps),
            qkv: Linear(unchecked: stacked, bias: qkvBias ? projections.flatMap { $0.bias ?? [] } : nil),
            attentionOutput: try vb.linear("attention.output.dense", shape: [d, d]),
            normAfter: try vb.layerNorm("layernorm_after", width: d, eps: eps),
            intermediate: intermediate,
            output: try vb.linear("output.dense", shape: [d, intermediate.outFeatures]))
    }
}

