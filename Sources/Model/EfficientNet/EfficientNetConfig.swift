import Foundation

/// The `config.json` that `tools/convert_efficientnet_lite0.py` writes next to the converted weights.
///
/// Geometry the weights cannot tell (strides, TF-"same" padding, BatchNorm eps) comes from here;
/// channel counts and kernel sizes are read from the weight shapes and checked against it.
public struct EfficientNetConfig: CheckpointConfig, Equatable {
    /// The stem conv (a full k x k conv over the RGB input).
    public struct Stem: Decodable, Sendable, Equatable {
        public var weight: String
        public var batchNorm: String
        public var stride: Int
        /// The input size the static padding was computed for (= the image size).
        public var inputSize: Int
        public var padding: ConvPadding

        enum CodingKeys: String, CodingKey {
            case weight, stride, batchNorm = "batch_norm", inputSize = "input_size"
            case paddingTopBottom = "padding_top_bottom", paddingLeftRight = "padding_left_right"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            weight = try c.decode(String.self, forKey: .weight)
            batchNorm = try c.decode(String.self, forKey: .batchNorm)
            stride = try c.decode(Int.self, forKey: .stride)
            inputSize = try c.decode(Int.self, forKey: .inputSize)
            padding = try ConvPadding(c, .paddingTopBottom, .paddingLeftRight)
        }
    }

    /// One MBConv block, `_blocks.{index}`.
    public struct Block: Decodable, Sendable, Equatable {
        public var index: Int
        public var stride: Int
        public var padding: ConvPadding
        /// Whether the block adds its input to its output (the converter's rule: stride 1, same width).
        public var residual: Bool
        public var hasExpandConv: Bool

        enum CodingKeys: String, CodingKey {
            case index, stride, residual, hasExpandConv = "has_expand_conv"
            case paddingTopBottom = "padding_top_bottom", paddingLeftRight = "padding_left_right"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            index = try c.decode(Int.self, forKey: .index)
            stride = try c.decode(Int.self, forKey: .stride)
            residual = try c.decode(Bool.self, forKey: .residual)
            hasExpandConv = try c.decode(Bool.self, forKey: .hasExpandConv)
            padding = try ConvPadding(c, .paddingTopBottom, .paddingLeftRight)
        }
    }

    /// The 1x1 head conv and its BatchNorm.
    public struct Head: Decodable, Sendable, Equatable {
        public var weight: String
        public var batchNorm: String

        enum CodingKeys: String, CodingKey { case weight, batchNorm = "batch_norm" }
    }

    /// The ImageNet classifier on the pooled features.
    public struct Classifier: Decodable, Sendable, Equatable {
        public var weight: String
        public var bias: String
    }

    public var kind: String
    public var imageSize: Int
    public var batchNormEpsilon: Double
    /// "relu6", the only activation EfficientNet-Lite uses.
    public var activation: String
    public var stem: Stem
    public var blocks: [Block]
    public var head: Head
    /// Absent for a checkpoint without classifier.
    public var classifier: Classifier?
    /// One class name per line, next to config.json.
    public var classNamesFile: String?
    public var preprocess: ImagePreprocessConfig

    enum CodingKeys: String, CodingKey {
        case kind, activation, stem, blocks, head, classifier, preprocess
        case imageSize = "image_size", batchNormEpsilon = "batch_norm_epsilon", classNamesFile = "class_names_file"
    }

    // CheckpointConfig: what the load errors say (`Checkpoint`, `CheckpointConfig.load(from:)`).
    public static var missingConfigHint: String {
        "an EfficientNet-Lite folder needs config.json (scripts/setup-models.sh converts EfficientNet-Lite0)"
    }
    public static func missingWeightsHint(_ name: String) -> String? {
        "the encoder folder needs \(name) (scripts/setup-models.sh converts EfficientNet-Lite0)"
    }
}

extension ConvPadding {
    /// Decodes the converter's `[top, bottom]` and `[left, right]` pairs.
    init<Key: CodingKey>(_ c: KeyedDecodingContainer<Key>, _ topBottom: Key, _ leftRight: Key) throws {
        let tb = try c.decode([Int].self, forKey: topBottom), lr = try c.decode([Int].self, forKey: leftRight)
        guard tb.count == 2, lr.count == 2, (tb + lr).allSatisfy({ $0 >= 0 }) else {
            throw DecodingError.dataCorruptedError(forKey: topBottom, in: c, debugDescription: "padding must be two non-negative pairs")
        }
        self.init(top: tb[0], bottom: tb[1], left: lr[0], right: lr[1])
    }
}
