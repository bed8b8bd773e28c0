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

    /// Loads `config.json` and `model.safetensors` from a checkpoint folder.
    public init(directory: URL) throws(ModelLoadError) {
        let config = try BertConfig.load(from: directory.appendingPathComponent("config.json"))
        let weightsURL = directory.appendingPathComponent("model.safetensors")
        guard FileManager.default.fileExists(atPath: weightsURL.path) else {
            throw .missingFile(path: weightsURL.path, hint: "the encoder folder needs model.safetensors (run scripts/setup-models.sh for all-MiniLM-L6-v2)")
        }
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(path: weightsURL.path) } catch { throw .weights(error) }
        try self.init(weights: file, config: config)
    }

    /// Builds the encoder from opened weights and a config, checking one against the other.
    public init(weights file: SafeTensorsFile, config: BertConfig) throws(ModelLoadError) {
        guard config.positionEmbeddingType == "absolute" else {
            throw .inconsistent(detail: "position_embedding_type '\(config.positionEmbeddingType)' is not supported (absolute only)")
        }
        let prefix = file.contains("bert.embeddings.word_embeddings.weight") ? "bert." : ""
        let names = WeightNames(file: file, prefix: prefix)
        do {
            let word = try file.tensor(names.full("embeddings.word_embeddings.weight"), expectedShape: [-1, -1])
            let d = word.lastDimension
            guard d == config.hiddenSize else {
                throw ModelLoadError.inconsistent(detail: "config.json says hidden_size \(config.hiddenSize) but \(file.path) has word embeddings of width \(d)")
            }
            guard config.numAttentionHeads > 0, d % config.numAttentionHeads == 0 else {
                throw ModelLoadError.inconsistent(detail: "hidden_size \(d) is not a multiple of num_attention_heads \(config.numAttentionHeads)")
            }
            let eps = Float(config.layerNormEps)
            wordEmbeddings = word
            positionEmbeddings = try file.tensor(names.full("embeddings.position_embeddings.weight"), expectedShape: [-1, d])
            tokenTypeEmbeddings = try file.tensor(names.full("embeddings.token_type_embeddings.weight"), expectedShape: [-1, d])
            embeddingNorm = try names.layerNorm("embeddings.LayerNorm", width: d, eps: eps)

            // Count the layers in the file so a config that disagrees is reported, not half-loaded.
            var found = 0
            while file.contains(names.full("encoder.layer.\(found).attention.self.query.weight")) { found += 1 }
            guard found == config.numHiddenLayers else {
                throw ModelLoadError.inconsistent(detail: "config.json says num_hidden_layers \(config.numHiddenLayers) but \(file.path) has \(found) layers")
            }
            var layers: [Layer] = []
            for i in 0..<found {
                let p = "encoder.layer.\(i)."
                let q = try names.linear(p + "attention.self.query", shape: [d, d])
                let k = try names.linear(p + "attention.self.key", shape: [d, d])
                let v = try names.linear(p + "attention.self.value", shape: [d, d])
                let qkv = try Linear(weight: Tensor(uncheckedShape: [3 * d, d], data: q.weight.data + k.weight.data + v.weight.data),
                                     bias: (q.bias ?? []) + (k.bias ?? []) + (v.bias ?? []))
                let intermediate = try names.linear(p + "intermediate.dense", shape: [-1, d])
                let inner = intermediate.outFeatures
                // Posts are short (a tweet is 10 to 40 tokens): every product keeps a packed weight.
                layers.append(Layer(
                    qkv: qkv.packedForShortInputs(),
                    attentionOutput: try names.linear(p + "attention.output.dense", shape: [d, d]).packedForShortInputs(),
                    attentionNorm: try names.layerNorm(p + "attention.output.LayerNorm", width: d, eps: eps),
                    intermediate: intermediate.packedForShortInputs(),
                    output: try names.linear(p + "output.dense", shape: [d, inner]).packedForShortInputs(),
                    outputNorm: try names.layerNorm(p + "output.LayerNorm", width: d, eps: eps)))
            }
            self.layers = layers
        } catch {
            throw .loading(error, file: file.path)
        }
        guard let activation = Activation(huggingFaceName: config.hiddenAct) else {
            throw .inconsistent(detail: "hidden_act '\(config.hiddenAct)' is not supported (gelu, relu, quick_gelu)")
        }
        self.activation = activation
        self.config = config
    }
}

/// Resolves a checkpoint's tensor names: the optional `bert.` prefix and both LayerNorm spellings.
struct WeightNames {
    let file: SafeTensorsFile
    let prefix: String

    func full(_ name: String) -> String { prefix + name }

    func linear(_ name: String, shape: [Int]) throws(SafeTensorsError) -> Linear {
        let weight = try file.tensor(full(name + ".weight"), expectedShape: shape)
        let bias = try file.vector(full(name + ".bias"), count: weight.shape[0])
        do { return try Linear(weight: weight, bias: bias) } catch {
            throw .shapeMismatch(file: file.path, tensor: full(name + ".bias"), expected: [weight.shape[0]], found: [bias.count])
        }
    }

    func layerNorm(_ name: String, width: Int, eps: Float) throws(SafeTensorsError) -> LayerNorm {
        let old = !file.contains(full(name + ".weight")) && file.contains(full(name + ".gamma"))
        let gamma = try file.vector(full(name + (old ? ".gamma" : ".weight")), count: width)
        let beta = try file.vector(full(name + (old ? ".beta" : ".bias")), count: width)
        do { return try LayerNorm(gamma: gamma, beta: beta, eps: eps) } catch {
            throw .shapeMismatch(file: file.path, tensor: full(name), expected: [width], found: [beta.count])
        }
    }
}

extension Activation {
    /// Maps a Hugging Face `hidden_act` name; `nil` for ones this engine does not implement.
    public init?(huggingFaceName name: String) {
        switch name {
        case "gelu": self = .gelu
        case "quick_gelu": self = .quickGELU
        case "relu": self = .relu
        case "relu6": self = .relu6
        default: return nil
        }
    }
}

extension Tensor {
    /// The tensor seen as `[count / width, width]`.
    func reshapedRows(_ width: Int) -> Tensor {
        Tensor(uncheckedShape: [width == 0 ? 0 : count / width, width], data: data)
    }
}
