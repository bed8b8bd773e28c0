/// The AnANet correlation head (`ananet` kind) over a batch's features: the image encoder's
/// regions, and per word its GloVe vector ++ the mean of its pieces' text states.
/// Posts without an image get no label from it (the classifier marks them `no_image`).
struct AnANetTaskHead: TaskHead {
    let task: String
    let head: AnANetHead
    let vectors: WordVectors
    let decision: LabelDecision
    var headName: String { "ananet" }

    init(task: String, head: AnANetHead, vectors: WordVectors, decision: LabelDecision, textWidth: Int,
         imageEncoder: any ImageEncoder, manifestPath: String) throws(ModelLoadError) {
        guard head.wordWidth == vectors.dimensions + textWidth else {
            throw .inconsistent(detail: "head '\(task)' (ananet) reads words of width \(head.wordWidth) (gru.weight_ih_l0) but word vectors (\(vectors.dimensions)) + text states (\(textWidth)) make \(vectors.dimensions + textWidth); check word_vectors and text_encoder in \(manifestPath)")
        }
        guard head.regionWidth == imageEncoder.regionWidth else {
            throw .inconsistent(detail: "head '\(task)' (ananet) reads regions of width \(head.regionWidth) (region_proj.weight) but the image encoder gives \(imageEncoder.regionWidth)")
        }
        guard head.labelCount == decision.labels.count else {
            throw .inconsistent(detail: "head '\(task)' (ananet) has \(decision.labels.count) labels in \(manifestPath) but its classifiers (association.classifier.weight, alignment.classifier.weight) give \(head.labelCount) outputs")
        }
        self.task = task
        self.head = head
        self.vectors = vectors
        self.decision = decision
    }

    func label(_ features: BatchFeatures) throws(InferenceError) -> [TaskLabel?] {
        guard let regions = features.image?.regions else {
            return [TaskLabel?](repeating: nil, count: features.batchSize)
        }
        guard regions.rank == 3, regions.shape[1] == head.regionCount else {
            throw .shapeMismatch(expected: [-1, head.regionCount, head.regionWidth], found: regions.shape, context: "AnANet regions (region_count in the head's config)")
        }
        let posts = features.imageRow.indices.filter { features.imageRow[$0] != nil }
        let length = features.paddedLength
        var words: [Tensor] = []
        for b in posts {
            let states = features.textStates.rows((b * length)..<((b + 1) * length))
            words.append(try WordFeatures.rows(words: features.words[b], tokenStates: states, vectors: vectors, maxWords: head.maxWords))
        }
        let output = try head.forward(regions: regions, words: words)
        let c = output.probabilities.lastDimension
        var labels = [TaskLabel?](repeating: nil, count: features.batchSize)
        for (row, b) in posts.enumerated() {
            labels[b] = decision.taskLabel(task: task, head: headName, probabilities: output.probabilities.data[(row * c)..<((row + 1) * c)])
        }
        return labels
    }
}

extension AnANetTaskHead {
    /// The `ananet` head of a manifest entry (`HeadRegistry`): it needs the bundle's word vectors
    /// and image encoder, and a config with `region_count`.
    static func make(_ entry: BundleManifest.Head, context: ModelBundle.HeadContext) throws(ModelLoadError) -> any TaskHead {
        let name = context.name(entry)
        guard let vectors = context.vectors else {
            throw .invalidConfig(path: context.manifestPath, detail: "\(name) is ananet, which needs word_vectors (GloVe) in the manifest")
        }
        guard let image = context.image else {
            throw .invalidConfig(path: context.manifestPath, detail: "\(name) is ananet, which needs an image_encoder in the manifest")
        }
        guard let config = try context.config(AnANetConfig.self, of: entry) else {
            throw .invalidConfig(path: context.manifestPath, detail: "\(name) is ananet, whose config needs region_count (and lambda, eta)")
        }
        let head = try AnANetHead(weights: try context.weights(entry), config: config)
        return try AnANetTaskHead(task: entry.task, head: head, vectors: vectors, decision: context.decision(entry),
                                  textWidth: context.text.encoder.hiddenSize, imageEncoder: image, manifestPath: context.manifestPath)
    }
}
