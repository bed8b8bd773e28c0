import Foundation

/// Settings of the zero-shot correlation head (`zero_shot_imagenet` kind), from the manifest.
public struct ZeroShotConfig: Codable, Sendable, Equatable {
    /// How a class name becomes a sentence for the text encoder; `{}` is replaced by the name.
    public var prompt: String = "a photo of a {}"
    /// How many of the image's most probable classes are compared with the text.
    public var topConcepts: Int = 5
    /// Classes less probable than this are not compared (the most probable one always is).
    public var minConceptProbability: Float = 0.05
    /// Score from which the pair is at least implicitly relevant.
    public var implicitThreshold: Float = 0.25
    /// Score from which the pair is explicitly relevant.
    public var explicitThreshold: Float = 0.5
    /// Added to a concept's score when the text names it (a word of the class name appears).
    public var nameMatchBonus: Float = 0.3
    /// Softness of the pseudo-probabilities around the thresholds (score units).
    public var temperature: Float = 0.05
    /// Evidence words reported per post.
    public var evidenceWords: Int = 3

    public init() {}

    enum CodingKeys: String, CodingKey {
        case prompt
        case topConcepts = "top_concepts"
        case minConceptProbability = "min_concept_probability"
        case implicitThreshold = "implicit_threshold"
        case explicitThreshold = "explicit_threshold"
        case nameMatchBonus = "name_match_bonus"
        case temperature
        case evidenceWords = "evidence_words"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ZeroShotConfig()
        prompt = try c.decodeIfPresent(String.self, forKey: .prompt) ?? d.prompt
        topConcepts = try c.decodeIfPresent(Int.self, forKey: .topConcepts) ?? d.topConcepts
        minConceptProbability = try c.decodeIfPresent(Float.self, forKey: .minConceptProbability) ?? d.minConceptProbability
        implicitThreshold = try c.decodeIfPresent(Float.self, forKey: .implicitThreshold) ?? d.implicitThreshold
        explicitThreshold = try c.decodeIfPresent(Float.self, forKey: .explicitThreshold) ?? d.explicitThreshold
        nameMatchBonus = try c.decodeIfPresent(Float.self, forKey: .nameMatchBonus) ?? d.nameMatchBonus
        temperature = try c.decodeIfPresent(Float.self, forKey: .temperature) ?? d.temperature
        evidenceWords = try c.decodeIfPresent(Int.self, forKey: .evidenceWords) ?? d.evidenceWords
    }

    func check(path: String) throws(ModelLoadError) {
        func bad(_ detail: String) -> ModelLoadError { .invalidConfig(path: path, detail: "zero_shot_imagenet config: \(detail)") }
        guard prompt.contains("{}") else { throw bad("prompt '\(prompt)' has no {} for the class name") }
        guard topConcepts >= 1 else { throw bad("top_concepts must be at least 1") }
        guard implicitThreshold < explicitThreshold else {
            throw bad("implicit_threshold (\(implicitThreshold)) must be below explicit_threshold (\(explicitThreshold))")
        }
        guard temperature > 0 else { throw bad("temperature must be positive") }
        guard evidenceWords >= 0 else { throw bad("evidence_words must be 0 or more") }
    }
}

/// Image-text correlation without trained weights: the image's ImageNet concepts (from the image
/// encoder's classifier) against the post's text, in the text encoder's sentence space.
///
/// For each of the image's likeliest classes, the score is the cosine between the post's sentence
/// vector and the class prompt's ("a photo of a tabby, tabby cat"), plus `nameMatchBonus` when a
/// word of the class name appears in the text. The best class's score against two thresholds
/// gives explicit / implicit / irrelevant. The probabilities are a softmax of the score's signed
/// distances to the thresholds (so they agree with the label), not calibrated likelihoods.
/// Evidence: the class, its probability, the similarity, the score, and the words that matched
/// (named the class, or else whose contextual states are closest to the class prompt).
public struct ZeroShotCorrelationHead: TaskHead {
    public let task: String
    public var headName: String { "zero-shot-imagenet" }
    public let labels: [String]
    public let config: ZeroShotConfig
    /// Display name per class (its first synonym).
    let classNames: [String]
    /// Words of every synonym per class, lower-cased, for name matching.
    let classWords: [Set<String>]
    /// Unit-length sentence vectors of the class prompts, `[C, d]`.
    let conceptVectors: Tensor

    /// Labels must be, in order, the irrelevant, implicit and explicit names.
    public init(task: String, labels: [String], config: ZeroShotConfig, classNames rawNames: [String],
                encode: ([String]) throws(ModelLoadError) -> Tensor) throws(ModelLoadError) {
        guard labels.count == 3 else {
            throw .inconsistent(detail: "head '\(task)' (zero_shot_imagenet) needs 3 labels (irrelevant, implicit, explicit), found \(labels.count)")
        }
        self.task = task
        self.labels = labels
        self.config = config
        classNames = rawNames.map { $0.split(separator: ",").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? $0 }
        classWords = rawNames.map { name in
            Set(name.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init)
                .filter { $0.count > 2 && !EnglishStopwords.contains($0) })
        }
        let prompts = rawNames.map { config.prompt.replacingOccurrences(of: "{}", with: $0) }
        var vectors = try encode(prompts)
        SmallVectors.normaliseRows(&vectors)
        guard vectors.shape == [rawNames.count, vectors.lastDimension] else {
            throw .inconsistent(detail: "class prompt vectors have shape \(vectors.shape), expected [\(rawNames.count), d]")
        }
        conceptVectors = vectors
    }

    public func label(_ features: BatchFeatures) throws(InferenceError) -> [TaskLabel?] {
        guard let image = features.image, let logits = image.logits else {
            return [TaskLabel?](repeating: nil, count: features.batchSize)
        }
        let classCount = logits.lastDimension
        guard classCount == conceptVectors.rowCount else {
            throw .shapeMismatch(expected: [conceptVectors.rowCount], found: [classCount], context: "zero-shot head: image classes")
        }
        let d = conceptVectors.lastDimension
        guard features.sentenceVectors.lastDimension == d else {
            throw .shapeMismatch(expected: [d], found: [features.sentenceVectors.lastDimension], context: "zero-shot head: text width")
        }
        return (0..<features.batchSize).map { b in
            guard let row = features.imageRow[b] else { return nil }
            return labelPost(b, logits: logits.data[(row * classCount)..<((row + 1) * classCount)], features: features)
        }
    }

    private func labelPost(_ b: Int, logits: ArraySlice<Float>, features: BatchFeatures) -> TaskLabel {
        let d = conceptVectors.lastDimension
        let probabilities = SmallVectors.softmax(Array(logits))
        let ranked = probabilities.indices.sorted { probabilities[$0] > probabilities[$1] }
        let candidates = ranked.prefix(config.topConcepts).enumerated()
            .filter { $0.offset == 0 || probabilities[$0.element] >= config.minConceptProbability }.map(\.element)
        let text = SmallVectors.unit(Array(features.sentenceVectors.data[(b * d)..<((b + 1) * d)]))
        let words = features.words[b]
        var best = (concept: candidates[0], similarity: Float(-1), score: -Float.infinity, named: [String]())
        for c in candidates {
            let similarity = SmallVectors.dot(text, conceptVectors.data[(c * d)..<((c + 1) * d)])
            let named = words.map(\.text).filter { classWords[c].contains($0) || classWords[c].contains(Self.singular($0)) }
            let score = similarity + (named.isEmpty ? 0 : config.nameMatchBonus)
            if score > best.score { best = (c, similarity, score, named) }
        }
        let s = best.score, lo = config.implicitThreshold, hi = config.explicitThreshold, t = config.temperature
        // Signed distances into each label's score band: positive only inside it, so the
        // softmax's winner is the thresholds' label.
        let bands = [(lo - s) / t, min(s - lo, hi - s) / t, (s - hi) / t]
        let pseudo = SmallVectors.softmax(bands)
        let winner = s >= hi ? 2 : (s >= lo ? 1 : 0)
        var seen = Set<String>()
        let matched = best.named.isEmpty ? closestWords(b, to: best.concept, features: features)
                                         : best.named.filter { seen.insert($0).inserted }
        return TaskLabel(task: task, label: labels[winner],
                         probabilities: zip(labels, pseudo).map { (label: $0, probability: $1) },
                         head: headName,
                         evidence: [("concept", classNames[best.concept]),
                                    ("concept_probability", Self.format(probabilities[best.concept])),
                                    ("similarity", Self.format(best.similarity)),
                                    ("score", Self.format(s)),
                                    ("match", best.named.isEmpty ? "similar" : "named"),
                                    ("words", matched.joined(separator: " "))])
    }

    /// The words whose mean contextual state is closest to the concept's prompt vector.
    private func closestWords(_ b: Int, to concept: Int, features: BatchFeatures) -> [String] {
        guard config.evidenceWords > 0 else { return [] }
        let d = conceptVectors.lastDimension, length = features.paddedLength
        let target = conceptVectors.data[(concept * d)..<((concept + 1) * d)]
        var scored: [(String, Float)] = []
        for word in features.words[b] where word.text.count > 2 && !EnglishStopwords.contains(word.text) && word.text.first?.isLetter == true {
            var mean = [Float](repeating: 0, count: d)
            for p in word.pieces {
                let base = (b * length + p) * d
                for i in 0..<d { mean[i] += features.textStates.data[base + i] }
            }
            scored.append((word.text, SmallVectors.dot(SmallVectors.unit(mean), target)))
        }
        var seen = Set<String>()
        return scored.sorted { $0.1 > $1.1 }.map(\.0).filter { seen.insert($0).inserted }.prefix(config.evidenceWords).map { $0 }
    }

    static func singular(_ word: String) -> String {
        word.count > 3 && word.hasSuffix("s") ? String(word.dropLast()) : word
    }

    static func format(_ value: Float) -> String {
        String(format: "%.3f", Double(value))
    }
}

/// Words too common to count as evidence of what a text is about.
enum EnglishStopwords {
    static func contains(_ word: String) -> Bool { words.contains(word) }

    private static let words: Set<String> = [
        "the", "and", "for", "are", "but", "not", "you", "all", "any", "can", "had", "her", "was", "one",
        "our", "out", "has", "him", "his", "how", "its", "may", "new", "now", "old", "see", "two", "who",
        "did", "get", "got", "let", "say", "she", "too", "use", "that", "with", "have", "this", "will",
        "your", "from", "they", "been", "were", "what", "when", "them", "than", "then", "there", "their",
        "these", "those", "some", "just", "like", "into", "over", "also", "very", "only", "more", "most",
        "such", "much", "about", "after", "again", "before", "being", "could", "would", "should", "which",
        "while", "where", "here", "because", "really", "still", "yet", "my", "me", "its", "it's", "i'm",
        "another", "finally", "today", "tomorrow", "yesterday", "love", "great", "wow", "what's"
    ]
}

extension ZeroShotCorrelationHead {
    /// The `zero_shot_imagenet` head of a manifest entry (`HeadRegistry`): it needs an image
    /// encoder with a classifier and class names, and encodes their prompts with the text encoder.
    static func make(_ entry: BundleManifest.Head, context: ModelBundle.HeadContext) throws(ModelLoadError) -> any TaskHead {
        let name = context.name(entry)
        let config = try context.config(ZeroShotConfig.self, of: entry) ?? ZeroShotConfig()
        try config.check(path: context.manifestPath)
        guard let image = context.image, let names = image.classNames else {
            throw .invalidConfig(path: context.manifestPath, detail: "\(name) is zero_shot_imagenet, which needs an image encoder with a classifier and class names (efficientnet_lite)")
        }
        let text = context.text, maxTokens = context.maxTokens
        return try ZeroShotCorrelationHead(task: entry.task, labels: entry.labels, config: config, classNames: names) { prompts throws(ModelLoadError) in
            var rows: [Float] = []
            for start in stride(from: 0, to: prompts.count, by: 64) {
                let chunk = Array(prompts[start..<min(start + 64, prompts.count)])
                // Encoding the prompts is inference at load time: its failure fails the load.
                do {
                    for encoded in try text.encode(chunk, maxLength: maxTokens) { rows.append(contentsOf: encoded.embedding) }
                } catch {
                    throw .inconsistent(detail: "\(name): \(error)")
                }
            }
            do { return try Tensor(shape: [prompts.count, text.encoder.hiddenSize], data: rows) } catch {
                throw .inconsistent(detail: "\(name): \(error)")
            }
        }
    }
}
