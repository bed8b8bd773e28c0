import Foundation

/// The outputs of one BERT forward pass over a padded batch.
public struct BertOutput: Sendable {
    /// `[B, L, d]` final hidden states (`last_hidden_state`); rows past a post's length are padding.
    public let tokenStates: Tensor
    /// `[B, d]` masked mean of each post's token states (including `[CLS]` and `[SEP]`), not
    /// L2-normalised. sentence-transformers normalises this vector afterwards.
    public let sentenceVectors: Tensor
    /// Each post's length before padding.
    public let lengths: [Int]
    /// The padded length L.
    public let paddedLength: Int
    /// When requested: the embedding block's output followed by every layer's output, each `[B, L, d]`.
    public let stages: [Tensor]
    /// When requested (`keepingInputsOf`): the input of those layers, packed `[sum(lengths), d]`
    /// (posts back to back, no padding), by layer index.
    public var layerInputs: [Int: Tensor] = [:]

    /// The token states of post `b`, `[lengths[b], d]`, without padding.
    public func tokenStates(ofPost b: Int) -> Tensor {
        let d = tokenStates.lastDimension
        let rows = tokenStates.reshapedRows(d)
        return rows.rows((b * paddedLength)..<(b * paddedLength + lengths[b]))
    }
}

/// A BERT-family text encoder (`bert` kind): embeddings + LayerNorm, then post-LN transformer
/// layers, with every size taken from the checkpoint.
///
/// Loads Hugging Face names with or without the `bert.` prefix and LayerNorm parameters named
/// `weight`/`bias` or, in old checkpoints, `gamma`/`beta`.
public struct BertEncoder: Sendable {
    struct Layer: Sendable {
        /// Query, key and value stacked into one `[3d, d]` product.
        let qkv: Linear
        let attentionOutput: Linear
        let attentionNorm: LayerNorm
        let intermediate: Linear
        let output: Linear
        let outputNorm: LayerNorm
    }

    /// The checkpoint's configuration.
    public let config: BertConfig
    let wordEmbeddings: Tensor
    let positionEmbeddings: Tensor
    let tokenTypeEmbeddings: Tensor
    let embeddingNorm: LayerNorm
    private(set) var layers: [Layer]
    let activation: Activation
    /// The number format of the layers' four products (`Precision`); everything else is fp32.
    public let precision: Precision

    /// Width of the token states.
    public var hiddenSize: Int { wordEmbeddings.lastDimension }
    /// The longest sequence the position table allows.
    public var maxPositions: Int { positionEmbeddings.rowCount }
    /// The number of transformer layers.
    public var layerCount: Int { layers.count }

    /// The same encoder with other row limits for its packed weights: `qkv` for the stacked
    /// query-key-value product, `others` for the remaining three. For tuning runs (`bench/model`'s
    /// A/B); the outputs are the same whichever kernel a product takes.
    func withPackedRowLimits(qkv: Int, others: Int) -> BertEncoder {
        var copy = self
        copy.layers = layers.map { layer in
            Layer(qkv: layer.qkv.withPackedRowLimit(qkv),
                  attentionOutput: layer.attentionOutput.withPackedRowLimit(others),
                  attentionNorm: layer.attentionNorm,
                  intermediate: layer.intermediate.withPackedRowLimit(others),
                  output: layer.output.withPackedRowLimit(others),
                  outputNorm: layer.outputNorm)
        }
        return copy
    }

    /// Loads `config.json` and `model.safetensors` from a checkpoint folder, with the layers'
    /// products in `precision`.
    public init(directory: URL, precision: Precision = .fp32) throws(ModelLoadError) {
        let checkpoint = try Checkpoint<BertConfig>(directory: directory)
        try self.init(weights: checkpoint.weights, config: checkpoint.config, precision: precision)
    }

    /// Builds the encoder from opened weights and a config, checking one against the other, with
    /// the layers' products in `precision`.
    public init(weights file: SafeTensorsFile, config: BertConfig, precision: Precision = .fp32) throws(ModelLoadError) {
        self.precision = precision
        guard config.positionEmbeddingType == "absolute" else {
            throw .inconsistent(detail: "position_embedding_type '\(config.positionEmbeddingType)' is not supported (absolute only)")
        }
        let vb = WeightReader(file: file).optionalScope("bert", probe: "embeddings.word_embeddings.weight")
        do {
            let embeddings = vb.pp("embeddings")
            let word = try embeddings.tensor("word_embeddings.weight", shape: [-1, -1])
            let d = word.lastDimension
            guard d == config.hiddenSize else {
                throw ModelLoadError.inconsistent(detail: "config.json says hidden_size \(config.hiddenSize) but \(file.path) has word embeddings of width \(d)")
            }
            guard config.numAttentionHeads > 0, d % config.numAttentionHeads == 0 else {
                throw ModelLoadError.inconsistent(detail: "hidden_size \(d) is not a multiple of num_attention_heads \(config.numAttentionHeads)")
            }
            let eps = Float(config.layerNormEps)
            wordEmbeddings = word
            positionEmbeddings = try embeddings.tensor("position_embeddings.weight", shape: [-1, d])
            tokenTypeEmbeddings = try embeddings.tensor("token_type_embeddings.weight", shape: [-1, d])
            embeddingNorm = try embeddings.layerNorm("LayerNorm", width: d, eps: eps)

            let layerScope = vb.pp("encoder.layer")
            let count = try layerScope.layerCount(marker: "attention.self.query.weight", configSays: config.numHiddenLayers,
                                                  field: "num_hidden_layers")
            layers = try (0..<count).map { i throws(ModelLoadError) in
                try Self.layer(layerScope.pp("\(i)"), index: i, width: d, eps: eps, adapter: nil, precision: precision)
            }
        } catch {
            throw .loading(error, file: file.path)
        }
        guard let activation = Activation(huggingFaceName: config.hiddenAct) else {
            throw .inconsistent(detail: "hidden_act '\(config.hiddenAct)' is not supported (gelu, relu, quick_gelu)")
        }
        self.activation = activation
        self.config = config
    }

    /// This encoder with `adapter` merged into its layers from `adapter.firstLayer` on, rebuilt
    /// from `file` (the checkpoint this encoder was loaded from); the layers below are shared.
    public func adapted(by adapter: BertAdapter, weights file: SafeTensorsFile) throws(ModelLoadError) -> BertEncoder {
        let vb = WeightReader(file: file).optionalScope("bert", probe: "embeddings.word_embeddings.weight")
        let layerScope = vb.pp("encoder.layer")
        var copy = self
        for i in adapter.firstLayer..<layers.count {
            do {
                copy.layers[i] = try Self.layer(layerScope.pp("\(i)"), index: i, width: hiddenSize,
                                                eps: Float(config.layerNormEps), adapter: adapter, precision: precision)
            } catch {
                throw .loading(error, file: file.path)
            }
        }
        return copy
    }

    /// One layer from `vb` (`encoder.layer.i.`): `attention.self.{query,key,value}`,
    /// `attention.output.{dense,LayerNorm}`, `intermediate.dense`, `output.{dense,LayerNorm}`,
    /// with `adapter`'s changes to layer `index` merged in and the products packed in `precision`.
    private static func layer(_ vb: WeightReader, index: Int, width d: Int, eps: Float,
                              adapter: BertAdapter?, precision: Precision) throws(ModelLoadError) -> Layer {
        func linear(_ name: String, shape: [Int]) throws(ModelLoadError) -> Linear {
            let base = try vb.linear(name, shape: shape)
            return try adapter?.merged(base, weight: "encoder.layer.\(index).\(name).weight") ?? base
        }
        let q = try linear("attention.self.query", shape: [d, d])
        let k = try linear("attention.self.key", shape: [d, d])
        let v = try linear("attention.self.value", shape: [d, d])
        let qkv: Linear
        do {
            qkv = try Linear(weight: Tensor(uncheckedShape: [3 * d, d], data: q.weight.data + k.weight.data + v.weight.data),
                             bias: (q.bias ?? []) + (k.bias ?? []) + (v.bias ?? []))
        } catch {
            throw .inconsistent(detail: "\(vb.fullName("attention.self")) in \(vb.file.path): \(error)")
        }
        let intermediate = try linear("intermediate.dense", shape: [-1, d])
        let inner = intermediate.outFeatures
        // Posts are short (a tweet is 10 to 40 tokens): every product keeps a packed weight (in
        // bf16, only that one).
        return Layer(
            qkv: qkv.packedForShortInputs(precision),
            attentionOutput: try linear("attention.output.dense", shape: [d, d]).packedForShortInputs(precision),
            attentionNorm: try vb.layerNorm("attention.output.LayerNorm", width: d, eps: eps),
            intermediate: intermediate.packedForShortInputs(precision),
            output: try linear("output.dense", shape: [d, inner]).packedForShortInputs(precision),
            outputNorm: try vb.layerNorm("output.LayerNorm", width: d, eps: eps))
    }
}
