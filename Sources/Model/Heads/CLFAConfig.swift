import Foundation

/// The configuration of a CLFA sarcasm head (`config.json` next to its weights).
///
/// Only what the weights cannot say lives here: sizes (widths, layer count, label count) are read
/// from the weight shapes. Every field has a default, so `{}` is a valid config.
public struct CLFAConfig: Codable, Sendable, Equatable {
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

    /// Reads and decodes the config at `url`.
    public static func load(from url: URL) throws(ModelLoadError) -> CLFAConfig {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw .missingFile(path: url.path, hint: "a CLFA head needs its config.json (write {} for the defaults)")
        }
        let config: CLFAConfig
        do {
            config = try JSONDecoder().decode(CLFAConfig.self, from: data)
        } catch {
            throw .invalidConfig(path: url.path, detail: "\(error) (no_image is \"learned_token\" or \"text_only\")")
        }
        guard config.attentionHeads > 0, config.textLength > 0, config.layerNormEps >= 0 else {
            throw .invalidConfig(path: url.path, detail: "attention_heads and text_length must be positive and layer_norm_eps not negative")
        }
        return config
    }
}
