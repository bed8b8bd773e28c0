import Foundation

/// The arithmetic of the zero-shot correlation head for one post, apart from batches and records
/// so the golden test can hold it against tools/reference/zero_shot_reference.py.
///
/// The image's likeliest ImageNet classes (the candidates) are compared with the post's sentence
/// vector in the text encoder's space, through each class's description vector; a few features of
/// that comparison go through a multinomial logistic regression (`ZeroShotConfig.Calibration`)
/// fitted on labelled pairs, which gives calibrated probabilities instead of threshold distances.
public struct ZeroShotScorer: Sendable {
    /// What the calibration can read; the reference's docstring defines each one exactly.
    public enum Feature: String, CaseIterable, Sendable {
        /// The best candidate's cosine with the text, plus `nameMatchBonus` when the text names it.
        case similarity
        /// The cosine expected under the image's class distribution (all classes, weighted by
        /// probability): an image unsure of its class still says something about the text.
        case similarityMix = "similarity_mix"
        /// The candidates' highest cosine in standard deviations above the text's mean cosine with
        /// all classes: a text close to everything (short, generic) is not close to this image.
        case similarityZ = "similarity_z"
        /// 1 when the text names a candidate (a word of its class names), else 0.
        case named
        /// The highest word-vector cosine between a text word and a candidate's name words: the
        /// related-concept neighbourhood ("kitty" near "cat"), for texts that do not name the class.
        case related
    }

    /// One post's result.
    public struct Score: Sendable {
        /// Every feature, indexed like `Feature.allCases`.
        public var features: [Float]
        public var probabilities: [Float]
        /// Index of the most probable label.
        public var label: Int
        /// The best candidate (see `Feature.similarity`), its probability and cosine.
        public var concept: Int
        public var conceptProbability: Float
        public var similarity: Float
        /// The text's words that named a candidate, in text order.
        public var namedWords: [String]
        /// The text word of the best `related` pair ("" when none).
        public var relatedWord: String
    }

    let config: ZeroShotConfig
    /// Unit-length class description vectors, `[C, d]`.
    let concepts: Tensor
    /// Words of every synonym per class, lower-cased, for name matching.
    let classWords: [Set<String>]
    /// Unit word vectors of each class's name words (sorted by word), for `related`.
    let classWordVectors: [[[Float]]]
    let wordVectors: WordVectors?
    /// Columns of `Feature.allCases` the calibration reads, in its order.
    let featureColumns: [Int]

    /// `concepts` must have unit rows; `config` must have passed its check.
    public init(config: ZeroShotConfig, concepts: Tensor, classNames: [String], wordVectors: WordVectors?) {
        self.config = config
        self.concepts = concepts
        self.wordVectors = wordVectors
        classWords = classNames.map(Self.nameWords)
        classWordVectors = classWords.map { words in
            guard let wordVectors else { return [] }
            return words.sorted().compactMap { wordVectors.vector(for: $0).map(SmallVectors.unit) }
        }
        let all = Feature.allCases.map(\.rawValue)
        featureColumns = config.calibration.features.compactMap { all.firstIndex(of: $0) }
    }

    /// Scores one post: its image's class logits, its sentence vector and its words.
    public func score<L: Collection<Float>, S: Collection<Float>>(logits: L, sentence: S, words: [String]) -> Score {
        let p = SmallVectors.softmax(Array(logits))
        let ranked = p.indices.sorted { p[$0] != p[$1] ? p[$0] > p[$1] : $0 < $1 }
        let candidates = ranked.prefix(config.topConcepts).enumerated()
            .filter { $0.offset == 0 || p[$0.element] >= config.minConceptProbability }.map(\.element)
        let text = SmallVectors.unit(Array(sentence))
        let sims = cosines(text)
        let mean = sims.reduce(0, +) / Float(sims.count)
        let spread = (sims.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(sims.count)).squareRoot()
        let content = words.filter(Self.isContent)
        let namedBy = candidates.map { c in content.filter { classWords[c].contains($0) || classWords[c].contains(Self.singular($0)) } }
        // A named class gets the bonus in the comparison too, so it becomes the reported concept.
        let scores = candidates.indices.map { sims[candidates[$0]] + (namedBy[$0].isEmpty ? 0 : config.nameMatchBonus) }
        let bestIndex = scores.indices.max { scores[$0] != scores[$1] ? scores[$0] < scores[$1] : candidates[$0] > candidates[$1] } ?? 0
        let best = candidates[bestIndex]
        let maxSimilarity = candidates.map { sims[$0] }.max() ?? 0
        let allNamed = Set(namedBy.joined())
        let named = content.filter { allNamed.contains($0) }
        let (related, relatedWord) = relatedness(content, candidates: candidates)

        var features = [Float](repeating: 0, count: Feature.allCases.count)
        features[0] = scores[bestIndex]
        features[1] = zip(p, sims).reduce(0) { $0 + $1.0 * $1.1 }
        features[2] = spread > 0 ? (maxSimilarity - mean) / spread : 0
        features[3] = named.isEmpty ? 0 : 1
        features[4] = related
        let calibration = config.calibration
        let logitsOut = calibration.weights.indices.map { k in
            zip(calibration.weights[k], featureColumns).reduce(calibration.bias[k]) { $0 + $1.0 * features[$1.1] }
        }
        let probabilities = SmallVectors.softmax(logitsOut)
        let label = probabilities.indices.max { probabilities[$0] != probabilities[$1] ? probabilities[$0] < probabilities[$1] : $0 > $1 } ?? 0
        return Score(features: features, probabilities: probabilities, label: label, concept: best,
                     conceptProbability: p[best], similarity: sims[best], namedWords: named, relatedWord: relatedWord)
    }

    /// Every class description's cosine with the unit text vector (1000 x 384 multiply-adds for
    /// ImageNet and MiniLM: element by element through generic collections it was the heads'
    /// largest cost).
    private func cosines(_ text: [Float]) -> [Float] {
        SmallVectors.rowDots(concepts.data, rows: concepts.rowCount, width: concepts.lastDimension, with: text)
    }

    /// The highest cosine between a content word and a candidate's name words, and that text word.
    private func relatedness(_ content: [String], candidates: [Int]) -> (Float, String) {
        guard let wordVectors else { return (0, "") }
        let text = content.compactMap { w in wordVectors.vector(for: w).map { (w, SmallVectors.unit($0)) } }
        var best: (Float, String) = (0, "")
        for c in candidates {
            for u in classWordVectors[c] {
                for (w, v) in text {
                    let cosine = SmallVectors.dot(u, v)
                    if cosine > best.0 { best = (cosine, w) }
                }
            }
        }
        return best
    }

    /// Words of every synonym of a class name ("tabby, tabby cat" gives tabby and cat), those
    /// long enough and not stopwords.
    static func nameWords(_ name: String) -> Set<String> {
        Set(name.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init)
            .filter { $0.count > 2 && !EnglishStopwords.contains($0) })
    }

    /// Longer than 2 characters, starting with a letter, not a stopword: a word that can say what
    /// a text is about.
    static func isContent(_ word: String) -> Bool {
        word.count > 2 && word.first?.isLetter == true && !EnglishStopwords.contains(word)
    }

    static func singular(_ word: String) -> String {
        word.count > 3 && word.hasSuffix("s") ? String(word.dropLast()) : word
    }
}
