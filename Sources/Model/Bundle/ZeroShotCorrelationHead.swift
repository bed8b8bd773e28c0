import Foundation

/// Image-text correlation without trained weights: the image's ImageNet concepts (from the image
/// encoder's classifier) against the post's text, in the text encoder's sentence space, scored by
/// `ZeroShotScorer` (calibrated probabilities from a few similarity and name-match features).
/// Evidence: the best candidate class, its probability, its cosine with the text ("similarity"),
/// the other features the calibration reads, and the words that matched (named the class, or
/// else the word most related to it, or else whose contextual states are closest to the class's
/// description).
public struct ZeroShotCorrelationHead: TaskHead {
    public let task: String
    public var headName: String { "zero-shot-imagenet" }
    public let labels: [String]
    public let scorer: ZeroShotScorer
    /// Display name per class (its first synonym).
    let classNames: [String]

    /// Labels must be, in order, the irrelevant, implicit and explicit names. `concepts` are the
    /// class description vectors `[C, d]` (normalised here).
    public init(task: String, labels: [String], config: ZeroShotConfig, classNames rawNames: [String],
                concepts: Tensor, wordVectors: WordVectors?) throws(ModelLoadError) {
        guard labels.count == 3 else {
            throw .inconsistent(detail: "head '\(task)' (zero_shot_imagenet) needs 3 labels (irrelevant, implicit, explicit), found \(labels.count)")
        }
        guard concepts.shape == [rawNames.count, concepts.lastDimension], concepts.lastDimension > 0 else {
            throw .inconsistent(detail: "head '\(task)': class description vectors have shape \(concepts.shape), expected [\(rawNames.count), d]")
        }
        self.task = task
        self.labels = labels
        classNames = rawNames.map { $0.split(separator: ",").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? $0 }
        var unit = concepts
        SmallVectors.normaliseRows(&unit)
        scorer = ZeroShotScorer(config: config, concepts: unit, classNames: rawNames, wordVectors: wordVectors)
    }

    /// The manifest's settings, as the scorer uses them.
    public var config: ZeroShotConfig { scorer.config }

    public func label(_ features: BatchFeatures) throws(InferenceError) -> [TaskLabel?] {
        guard let image = features.image, let logits = image.logits else {
            return [TaskLabel?](repeating: nil, count: features.batchSize)
        }
        let classCount = logits.lastDimension
        guard classCount == scorer.concepts.rowCount else {
            throw .shapeMismatch(expected: [scorer.concepts.rowCount], found: [classCount], context: "zero-shot head: image classes")
        }
        let d = scorer.concepts.lastDimension
        guard features.sentenceVectors.lastDimension == d else {
            throw .shapeMismatch(expected: [d], found: [features.sentenceVectors.lastDimension], context: "zero-shot head: text width")
        }
        return (0..<features.batchSize).map { b in
            guard let row = features.imageRow[b] else { return nil }
            let score = scorer.score(logits: logits.data[(row * classCount)..<((row + 1) * classCount)],
                                     sentence: features.sentenceVectors.data[(b * d)..<((b + 1) * d)],
                                     words: features.words[b].map(\.text))
            return taskLabel(score, post: b, features: features)
        }
    }

    private func taskLabel(_ score: ZeroShotScorer.Score, post b: Int, features: BatchFeatures) -> TaskLabel {
        var seen = Set<String>()
        let (match, words): (String, [String])
        if !score.namedWords.isEmpty {
            (match, words) = ("named", score.namedWords.filter { seen.insert($0).inserted })
        } else if !score.relatedWord.isEmpty, config.calibration.features.contains(ZeroShotScorer.Feature.related.rawValue) {
            (match, words) = ("related", [score.relatedWord])
        } else {
            (match, words) = ("similar", closestWords(b, to: score.concept, features: features))
        }
        let all = ZeroShotScorer.Feature.allCases
        let used = config.calibration.features.compactMap { name in all.firstIndex { $0.rawValue == name } }
            .filter { all[$0] != .similarity }
            .map { (all[$0].rawValue, Self.format(score.features[$0])) }
        return TaskLabel(task: task, label: labels[score.label],
                         probabilities: zip(labels, score.probabilities).map { (label: $0, probability: $1) },
                         head: headName,
                         evidence: [("concept", classNames[score.concept]),
                                    ("concept_probability", Self.format(score.conceptProbability)),
                                    ("similarity", Self.format(score.similarity))] + used
                                   + [("match", match), ("words", words.joined(separator: " "))])
    }

    /// The words whose mean contextual state is closest to the class's description vector.
    private func closestWords(_ b: Int, to concept: Int, features: BatchFeatures) -> [String] {
        guard config.evidenceWords > 0 else { return [] }
        let d = scorer.concepts.lastDimension, length = features.paddedLength
        let target = scorer.concepts.data[(concept * d)..<((concept + 1) * d)]
        var scored: [(String, Float)] = []
        for word in features.words[b] where ZeroShotScorer.isContent(word.text) {
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
    /// encoder with a classifier and class names, word vectors when the calibration reads
    /// `related`, and either the precomputed description vectors or the text encoder to make them.
    static func make(_ entry: BundleManifest.Head, context: ModelBundle.HeadContext) throws(ModelLoadError) -> any TaskHead {
        let name = context.name(entry)
        let config = try context.config(ZeroShotConfig.self, of: entry) ?? ZeroShotConfig()
        try config.check(path: context.manifestPath, labelCount: entry.labels.count)
        guard let image = context.image, let names = image.classNames else {
            throw .invalidConfig(path: context.manifestPath, detail: "\(name) is zero_shot_imagenet, which needs an image encoder with a classifier and class names (efficientnet_lite)")
        }
        if config.calibration.features.contains(ZeroShotScorer.Feature.related.rawValue), context.vectors == nil {
            throw .invalidConfig(path: context.manifestPath, detail: "\(name): calibration feature 'related' needs word_vectors (GloVe) in the manifest")
        }
        let width = context.text.encoder.hiddenSize
        let concepts: Tensor
        if let relative = config.conceptVectors {
            let url = try context.file(relative, head: entry, field: "config.concept_vectors")
            do {
                concepts = try SafeTensorsFile(path: url.path).tensor("concepts", expectedShape: [names.count, width])
            } catch {
                throw .weights(error)
            }
        } else {
            concepts = try encodeConcepts(names, templates: config.templates, context: context, name: name)
        }
        return try ZeroShotCorrelationHead(task: entry.task, labels: entry.labels, config: config, classNames: names,
                                           concepts: concepts, wordVectors: context.vectors)
    }

    /// `[C, d]`: per class the sum of the unit sentence vectors of its name in every template (the
    /// head normalises it, which makes it the mean's direction).
    static func encodeConcepts(_ names: [String], templates: [String], context: ModelBundle.HeadContext,
                               name: String) throws(ModelLoadError) -> Tensor {
        let width = context.text.encoder.hiddenSize
        var sum = [Float](repeating: 0, count: names.count * width)
        for template in templates {
            let prompts = names.map { template.replacingOccurrences(of: "{}", with: $0) }
            for start in stride(from: 0, to: prompts.count, by: 64) {
                let chunk = Array(prompts[start..<min(start + 64, prompts.count)])
                // Encoding the descriptions is inference at load time: its failure fails the load.
                let encoded: [BertTextEncoder.Encoded]
                do { encoded = try context.text.encode(chunk, maxLength: context.maxTokens) } catch {
                    throw .inconsistent(detail: "\(name): \(error)")
                }
                for (offset, vector) in encoded.enumerated() {
                    let unit = SmallVectors.unit(vector.embedding)
                    let base = (start + offset) * width
                    for i in 0..<width { sum[base + i] += unit[i] }
                }
            }
        }
        do { return try Tensor(shape: [names.count, width], data: sum) } catch {
            throw .inconsistent(detail: "\(name): \(error)")
        }
    }
}
