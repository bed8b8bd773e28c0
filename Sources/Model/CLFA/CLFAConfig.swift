import Foundation

/// The configuration of a CLFA sarcasm head (`config.json` next to its weights).
///
/// Only what the weights cannot say lives here: sizes (widths, layer count, label count) are read
/// from the weight shapes. Every field has a default, so `{}` is a valid config.
public struct CLFAConfig: CheckpointConfig, Codable, Equatable {
    /// What the head does with a post that has no image.
    public enum NoImageRule: String, Codable, Sendable {
        /// Attend to the head's learned `no_image_token` tensor (`[K0, d_i]`) in place of image tokens.
        case learnedToken = "learned_token"
        /// Skip every `imageCrossAttn` sub-layer for the post.
        case textOnly = "text_only"
    }

    /// Heads of every attention sub-layer (`"attention_heads"`); must divide the attention width.
    public var attentionHeads: Int
    /// Epsilon of every LayerNorm (`"layer_norm_eps"`).
    public var layerNormEps: Float
    /// The token count the head was trained on, `[CLS]` + 75 word pieces + `[SEP]` (`"text_length"`):
    /// the bundle truncates text to this before the text encoder. The head itself accepts any length.
    public var textLength: Int
    /// The rule for posts without an image (`"no_image"`).
    public var noImage: NoImageRule

    enum CodingKeys: String, CodingKey {
        case attentionHeads = "attention_heads"
        case layerNormEps = "layer_norm_eps"
        case textLength = "text_length"
        case noImage = "no_image"
    }

    /// A config; the defaults are those of the paper's model.
    public init(attentionHeads: Int = 8, layerNormEps: Float = 1e-12, textLength: Int = 77,
                noImage: NoImageRule = .learnedToken) {
        self.attentionHeads = attentionHeads
        self.layerNormEps = layerNormEps
        self.textLength = textLength
        self.noImage = noImage
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = CLFAConfig()
        attentionHeads = try c.decodeIfPresent(Int.self, forKey: .attentionHeads) ?? defaults.attentionHeads
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? defaults.layerNormEps
        textLength = try c.decodeIfPresent(Int.self, forKey: .textLength) ?? defaults.textLength
        noImage = try c.decodeIfPresent(NoImageRule.self, forKey: .noImage) ?? defaults.noImage
    }

    // CheckpointConfig: what the load errors say (`Checkpoint`, `CheckpointConfig.load(from:)`).
    public static var missingConfigHint: String { "a CLFA head needs its config.json (write {} for the defaults)" }
    public static func missingWeightsHint(_ name: String) -> String? { "the CLFA head folder needs its weights, \(name)" }
    public static var decodingHint: String? { "no_image is \"learned_token\" or \"text_only\"" }
    public var problem: String? {
        attentionHeads > 0 && textLength > 0 && layerNormEps >= 0 ? nil
            : "attention_heads and text_length must be positive and layer_norm_eps not negative"
    }
}
