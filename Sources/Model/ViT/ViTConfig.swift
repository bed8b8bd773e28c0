import Foundation

/// The fields of a Hugging Face ViT `config.json` that inference needs.
///
/// Sizes are cross-checked against the weight shapes at load time. Optional fields default as in
/// transformers' `ViTConfig` (eps 1e-12, 224 pixels, patch 16, 3 channels, query/key/value biases).
public struct ViTConfig: CheckpointConfig, Codable, Equatable {
    /// Token width d (`hidden_size`).
    public var hiddenSize: Int
    /// Transformer layers (`num_hidden_layers`).
    public var numHiddenLayers: Int
    /// Attention heads; d must be a multiple of it (`num_attention_heads`).
    public var numAttentionHeads: Int
    /// Width of the MLP's hidden layer (`intermediate_size`); the weights' shape is what is used.
    public var intermediateSize: Int
    /// Added to the variance in every LayerNorm (`layer_norm_eps`).
    public var layerNormEps: Double
    /// Input height and width in pixels (HF accepts one number or a pair; pairs are `[height, width]`).
    public var imageSize: PixelSize
    /// Patch height and width in pixels, same spelling as `imageSize`.
    public var patchSize: PixelSize
    /// Input channels (`num_channels`), 3 for RGB.
    public var numChannels: Int
    /// HF's activation name: "gelu" (erf form) is what ViT checkpoints use.
    public var hiddenAct: String
    /// Whether query, key and value have biases (`qkv_bias`).
    public var qkvBias: Bool

    /// A height and width; decodes from a single number (square) or a `[height, width]` pair.
    public struct PixelSize: Codable, Sendable, Equatable {
        /// Rows of pixels.
        public var height: Int
        /// Columns of pixels.
        public var width: Int

        /// A size; `width` defaults to `height` (square).
        public init(_ height: Int, _ width: Int? = nil) {
            self.height = height
            self.width = width ?? height
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let side = try? c.decode(Int.self) {
                self.init(side)
                return
            }
            let pair = try c.decode([Int].self)
            guard pair.count == 2 else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "expected a number or [height, width], got \(pair.count) values")
            }
            self.init(pair[0], pair[1])
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.singleValueContainer()
            if height == width { try c.encode(height) } else { try c.encode([height, width]) }
        }
    }

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case intermediateSize = "intermediate_size"
        case layerNormEps = "layer_norm_eps"
        case imageSize = "image_size"
        case patchSize = "patch_size"
        case numChannels = "num_channels"
        case hiddenAct = "hidden_act"
        case qkvBias = "qkv_bias"
    }

    /// A config with every field given.
    public init(hiddenSize: Int, numHiddenLayers: Int, numAttentionHeads: Int, intermediateSize: Int,
                layerNormEps: Double = 1e-12, imageSize: PixelSize = PixelSize(224), patchSize: PixelSize = PixelSize(16),
                numChannels: Int = 3, hiddenAct: String = "gelu", qkvBias: Bool = true) {
        self.hiddenSize = hiddenSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.intermediateSize = intermediateSize
        self.layerNormEps = layerNormEps
        self.imageSize = imageSize
        self.patchSize = patchSize
        self.numChannels = numChannels
        self.hiddenAct = hiddenAct
        self.qkvBias = qkvBias
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        numHiddenLayers = try c.decode(Int.self, forKey: .numHiddenLayers)
        numAttentionHeads = try c.decode(Int.self, forKey: .numAttentionHeads)
        intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
        // Defaults are those of transformers' ViTConfig.
        layerNormEps = try c.decodeIfPresent(Double.self, forKey: .layerNormEps) ?? 1e-12
        imageSize = try c.decodeIfPresent(PixelSize.self, forKey: .imageSize) ?? PixelSize(224)
        patchSize = try c.decodeIfPresent(PixelSize.self, forKey: .patchSize) ?? PixelSize(16)
        numChannels = try c.decodeIfPresent(Int.self, forKey: .numChannels) ?? 3
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "gelu"
        qkvBias = try c.decodeIfPresent(Bool.self, forKey: .qkvBias) ?? true
    }

    /// Patches per column and per row; checked at load to divide the image exactly.
    public var patchGrid: (rows: Int, columns: Int) {
        (imageSize.height / max(patchSize.height, 1), imageSize.width / max(patchSize.width, 1))
    }

    // CheckpointConfig: what the load errors say (`Checkpoint`, `CheckpointConfig.load(from:)`).
    public static var missingConfigHint: String { "a ViT checkpoint folder needs config.json" }
    public static func missingWeightsHint(_ name: String) -> String? {
        "the ViT encoder folder needs \(name) (google/vit-base-patch32-224-in21k's, or a converted one)"
    }
}
