import Foundation

/// A model bundle's `manifest.json`: which encoders and heads make the model, where their files
/// are (relative to the bundle folder), and each head's labels, thresholds and configuration.
///
/// ```json
/// {"format": 1, "name": "postclassd-default", "version": "1.0.0",
///  "text_encoder": {"kind": "bert", "path": "text-encoder", "max_tokens": 77},
///  "image_encoder": {"kind": "efficientnet_lite", "path": "image-encoder"},
///  "word_vectors": {"kind": "glove", "path": "glove"},
///  "heads": [{"task": "sarcasm", "kind": "clfa", "weights": "heads/sarcasm.safetensors",
///             "labels": ["not_sarcastic", "sarcastic"], "thresholds": {"sarcastic": 0.4},
///             "config": {"attention_heads": 8, "no_image": "text_only"}}]}
/// ```
public struct BundleManifest: Codable, Sendable, Equatable {
    /// The manifest format this build reads.
    public static let currentFormat = 1

    /// A component the bundle is made of, by kind and folder.
    public struct Component: Codable, Sendable, Equatable {
        public var kind: String
        public var path: String
        /// For text encoders: ids per post, [CLS] and [SEP] included (longer texts are truncated).
        public var maxTokens: Int?
    }

    /// One task's head.
    public struct Head: Codable, Sendable, Equatable {
        /// The task name in output records, e.g. `sarcasm`.
        public var task: String
        /// The architecture, one of `HeadRegistry`'s kinds (`clfa`, `ananet`, `zero_shot_imagenet`).
        public var kind: String
        /// The weights file, when the kind has weights.
        public var weights: String?
        /// Low-rank adapters for the text encoder's top layers that this head was fine-tuned
        /// with (`BertAdapter`): the head reads the states of the encoder with them merged.
        public var textAdapter: String?
        /// Label names in the order of the head's outputs.
        public var labels: [String]
        /// Per-label probability a label needs to win (see `LabelDecision`).
        public var thresholds: [String: Float]?
        /// The kind's own settings, decoded by the kind.
        public var config: JSONValue?
        /// What the head is, in words, for `postclassd classify --describe` and the README.
        public var description: String?
    }

    public var format: Int
    public var name: String
    public var version: String
    public var description: String?
    public var textEncoder: Component
    public var imageEncoder: Component?
    public var wordVectors: Component?
    public var heads: [Head]

    /// Reads and checks `manifest.json` in `folder`.
    public static func load(folder: URL) throws(ModelLoadError) -> BundleManifest {
        let url = folder.appendingPathComponent("manifest.json")
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else {
            throw .missingFile(path: path, hint: "a model bundle is a folder with manifest.json; run scripts/setup-models.sh to build the default bundle, or pass --model with a bundle folder")
        }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw .invalidConfig(path: path, detail: "\(error)")
        }
        return try decode(data, path: path)
    }

    /// Decodes and checks the text of a `manifest.json`; `path` only names it in errors.
    public static func decode(_ data: Data, path: String) throws(ModelLoadError) -> BundleManifest {
        let manifest: BundleManifest
        do {
            if let problem = ManifestDecoding.syntaxProblem(in: data) {
                throw ModelLoadError.invalidConfig(path: path, detail: "not valid JSON: \(problem)")
            }
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            manifest = try decoder.decode(BundleManifest.self, from: data)
        } catch let error as ModelLoadError {
            throw error
        } catch let error as DecodingError {
            throw .invalidConfig(path: path, detail: ManifestDecoding.describe(error))
        } catch {
            throw .invalidConfig(path: path, detail: "\(error)")
        }
        try manifest.check(path: path)
        return manifest
    }

    /// Every file or folder the manifest names, with the field that names it (`heads[1].weights`).
    public var namedPaths: [(field: String, path: String)] {
        var paths = [("text_encoder.path", textEncoder.path)]
        if let imageEncoder { paths.append(("image_encoder.path", imageEncoder.path)) }
        if let wordVectors { paths.append(("word_vectors.path", wordVectors.path)) }
        for (i, head) in heads.enumerated() {
            if let weights = head.weights { paths.append(("heads[\(i)].weights", weights)) }
            if let adapter = head.textAdapter { paths.append(("heads[\(i)].text_adapter", adapter)) }
        }
        return paths
    }

    /// Why `path` could name something outside the bundle folder, or nil when it cannot (by its
    /// spelling; symbolic links are checked when the bundle is loaded).
    ///
    /// A bundle is often downloaded from elsewhere; confining its paths keeps a manifest from
    /// making the daemon open arbitrary files (`/etc/shadow` as "weights", a device that blocks).
    public static func escapeProblem(in path: String) -> String? {
        if path.isEmpty { return "it is empty" }
        if path.hasPrefix("/") { return "it is absolute" }
        if path.utf8.contains(0) { return "it contains a NUL byte" }
        if path.split(separator: "/", omittingEmptySubsequences: true).contains("..") { return "it has a '..' component" }
        return nil
    }

    /// Problems a manifest can have on its own, before any file is opened.
    func check(path: String) throws(ModelLoadError) {
        guard format == Self.currentFormat else {
            throw .invalidConfig(path: path, detail: "format \(format) is not supported (this build reads format \(Self.currentFormat)); use a bundle made for this version")
        }
        guard !heads.isEmpty else {
            throw .invalidConfig(path: path, detail: "heads is empty: a bundle needs at least one head")
        }
        var seen = Set<String>()
        for head in heads {
            guard seen.insert(head.task).inserted else {
                throw .invalidConfig(path: path, detail: "two heads have task '\(head.task)'; each task needs exactly one head")
            }
            guard head.labels.count >= 2, Set(head.labels).count == head.labels.count else {
                throw .invalidConfig(path: path, detail: "head '\(head.task)': labels must be at least two distinct names, found \(head.labels)")
            }
            for (label, value) in head.thresholds ?? [:] {
                guard head.labels.contains(label) else {
                    throw .invalidConfig(path: path, detail: "head '\(head.task)': threshold for unknown label '\(label)' (labels: \(head.labels.joined(separator: ", ")))")
                }
                guard value > 0, value <= 1 else {
                    throw .invalidConfig(path: path, detail: "head '\(head.task)': threshold \(value) for '\(label)' must be in (0, 1]")
                }
            }
        }
        for (field, named) in namedPaths {
            if let problem = Self.escapeProblem(in: named) {
                throw .invalidConfig(path: path, detail: "\(field) '\(named)' may leave the bundle folder (\(problem)); paths in a manifest must be relative to the bundle folder and stay inside it")
            }
        }
        if let maxTokens = textEncoder.maxTokens, maxTokens < 2 {
            throw .invalidConfig(path: path, detail: "text_encoder.max_tokens is \(maxTokens); it must be at least 2 ([CLS] and [SEP])")
        }
    }
}
