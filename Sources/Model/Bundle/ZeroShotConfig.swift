import Foundation

/// Settings of the zero-shot correlation head (`zero_shot_imagenet` kind), from the manifest's
/// `config`. The scorer they drive is described on `ZeroShotScorer`.
public struct ZeroShotConfig: Codable, Sendable, Equatable {
    /// How a class name becomes sentences for the text encoder (`{}` is replaced by the name); a
    /// class's description vector is the mean of the unit vectors of all of them.
    public var templates: [String] = ["a photo of a {}"]
    /// Precomputed description vectors (a safetensors file in the bundle with one `[C, d]` tensor
    /// `concepts`, unit rows), made from `templates` by tools/bundles/correlation/concepts.py.
    /// Without it the head encodes the templates when it loads.
    public var conceptVectors: String?
    /// How many of the image's most probable classes are compared with the text.
    public var topConcepts: Int = 5
    /// Classes less probable than this are not compared (the most probable one always is).
    public var minConceptProbability: Float = 0.05
    /// Added to a candidate's cosine when the text names it (a word of its class names, or that
    /// word plus "s"), in the `similarity` feature.
    public var nameMatchBonus: Float = 0.3
    /// The multinomial logistic regression from the score features to the labels.
    public var calibration: Calibration = Calibration()
    /// Evidence words reported per post.
    public var evidenceWords: Int = 3

    /// `probabilities = softmax(weights · features + bias)`, one row per label in the head's label
    /// order; the label is the most probable.
    ///
    /// The default reproduces the single-prompt head this replaced: implicit from a similarity
    /// (name bonus included) of 0.18, explicit from 0.35.
    public struct Calibration: Codable, Sendable, Equatable {
        /// Names of the features (see `ZeroShotScorer.Feature`), in the order of the weights' columns.
        public var features: [String] = ["similarity"]
        /// `[labels][features]`.
        public var weights: [[Float]] = [[0], [20], [40]]
        /// One per label.
        public var bias: [Float] = [0, -3.6, -10.6]

        public init() {}
    }

    public init() {}

    enum CodingKeys: String, CodingKey {
        case templates
        case conceptVectors = "concept_vectors"
        case topConcepts = "top_concepts"
        case minConceptProbability = "min_concept_probability"
        case nameMatchBonus = "name_match_bonus"
        case calibration
        case evidenceWords = "evidence_words"
    }

    /// The single-prompt head's settings, refused so an old manifest does not load with other
    /// decisions than it asks for.
    enum RemovedKeys: String, CodingKey, CaseIterable {
        case prompt, implicitThreshold = "implicit_threshold", explicitThreshold = "explicit_threshold", temperature
    }

    public init(from decoder: any Decoder) throws {
        let removed = try decoder.container(keyedBy: RemovedKeys.self)
        for key in RemovedKeys.allCases where removed.contains(key) {
            throw DecodingError.dataCorruptedError(forKey: key, in: removed, debugDescription:
                "'\(key.stringValue)' is no longer read: the zero-shot head takes 'templates' and a 'calibration' (tools/bundles/correlation/README.md)")
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ZeroShotConfig()
        templates = try c.decodeIfPresent([String].self, forKey: .templates) ?? d.templates
        conceptVectors = try c.decodeIfPresent(String.self, forKey: .conceptVectors)
        topConcepts = try c.decodeIfPresent(Int.self, forKey: .topConcepts) ?? d.topConcepts
        minConceptProbability = try c.decodeIfPresent(Float.self, forKey: .minConceptProbability) ?? d.minConceptProbability
        nameMatchBonus = try c.decodeIfPresent(Float.self, forKey: .nameMatchBonus) ?? d.nameMatchBonus
        calibration = try c.decodeIfPresent(Calibration.self, forKey: .calibration) ?? d.calibration
        evidenceWords = try c.decodeIfPresent(Int.self, forKey: .evidenceWords) ?? d.evidenceWords
    }

    func check(path: String, labelCount: Int) throws(ModelLoadError) {
        func bad(_ detail: String) -> ModelLoadError { .invalidConfig(path: path, detail: "zero_shot_imagenet config: \(detail)") }
        guard !templates.isEmpty else { throw bad("templates is empty") }
        for template in templates where !template.contains("{}") {
            throw bad("template '\(template)' has no {} for the class name")
        }
        guard topConcepts >= 1 else { throw bad("top_concepts must be at least 1") }
        guard evidenceWords >= 0 else { throw bad("evidence_words must be 0 or more") }
        guard nameMatchBonus.isFinite else { throw bad("name_match_bonus must be finite") }
        let features = calibration.features
        for name in features where ZeroShotScorer.Feature(rawValue: name) == nil {
            throw bad("calibration.features: unknown feature '\(name)' (known: \(ZeroShotScorer.Feature.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard calibration.weights.count == labelCount, calibration.weights.allSatisfy({ $0.count == features.count }) else {
            throw bad("calibration.weights must be \(labelCount) rows (one per label) of \(features.count) (one per feature)")
        }
        guard calibration.bias.count == labelCount else { throw bad("calibration.bias must have \(labelCount) values (one per label)") }
        guard (calibration.weights.flatMap { $0 } + calibration.bias).allSatisfy(\.isFinite) else {
            throw bad("calibration weights and bias must be finite")
        }
    }
}
