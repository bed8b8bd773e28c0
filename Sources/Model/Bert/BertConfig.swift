import Foundation

/// The fields of a Hugging Face BERT `config.json` that inference needs.
///
/// Sizes here are cross-checked against the weight shapes at load time; the weights win where a
/// config is silent (fields are optional with BERT-base defaults only where HF has defaults).
public struct BertConfig: CheckpointConfig, Codable, Equatable {
    public var hiddenSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var intermediateSize: Int
    public var layerNormEps: Double
    public var maxPositionEmbeddings: Int
    public var typeVocabSize: Int
    public var vocabSize: Int
    /// HF's activation name: "gelu" (erf form) is what BERT checkpoints use.
    public var hiddenAct: String
    /// "absolute" (learned position table), the only kind this engine implements.
    public var positionEmbeddingType: String

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case intermediateSize = "intermediate_size"
        case layerNormEps = "layer_norm_eps"
        case maxPositionEmbeddings = "max_position_embeddings"
        case typeVocabSize = "type_vocab_size"
        case vocabSize = "vocab_size"
        case hiddenAct = "hidden_act"
        case positionEmbeddingType = "position_embedding_type"
    }

    /// A config with every field given.
    public init(hiddenSize: Int, numHiddenLayers: Int, numAttentionHeads: Int, intermediateSize: Int,
                layerNormEps: Double = 1e-12, maxPositionEmbeddings: Int = 512, typeVocabSize: Int = 2,
                vocabSize: Int, hiddenAct: String = "gelu", positionEmbeddingType: String = "absolute") {
        self.hiddenSize = hiddenSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.intermediateSize = intermediateSize
        self.layerNormEps = layerNormEps
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.typeVocabSize = typeVocabSize
        self.vocabSize = vocabSize
        self.hiddenAct = hiddenAct
        self.positionEmbeddingType = positionEmbeddingType
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        numHiddenLayers = try c.decode(Int.self, forKey: .numHiddenLayers)
        numAttentionHeads = try c.decode(Int.self, forKey: .numAttentionHeads)
        intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
        // Defaults are those of transformers' BertConfig.
        layerNormEps = try c.decodeIfPresent(Double.self, forKey: .layerNormEps) ?? 1e-12
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 512
        typeVocabSize = try c.decodeIfPresent(Int.self, forKey: .typeVocabSize) ?? 2
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "gelu"
        positionEmbeddingType = try c.decodeIfPresent(String.self, forKey: .positionEmbeddingType) ?? "absolute"
    }

    // CheckpointConfig: what the load errors say (`Checkpoint`, `CheckpointConfig.load(from:)`).
    public static var missingConfigHint: String { "a BERT checkpoint folder needs config.json" }
    public static func missingWeightsHint(_ name: String) -> String? {
        "the encoder folder needs \(name) (run scripts/setup-models.sh for all-MiniLM-L6-v2)"
    }
}
