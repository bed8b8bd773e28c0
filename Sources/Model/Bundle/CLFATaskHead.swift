/// The CLFA sarcasm head (`clfa` kind) over a batch's features: the text encoder's token states
/// and, for posts with an image, the image encoder's regions as image tokens.
struct CLFATaskHead: TaskHead {
    let task: String
    let head: CLFAHead
    let decision: LabelDecision
    var headName: String { head.imageWidth == nil ? "clfa-text-only" : "clfa" }

    init(task: String, head: CLFAHead, decision: LabelDecision, textWidth: Int, imageWidth: Int?,
         manifestPath: String) throws(ModelLoadError) {
        guard head.textWidth == textWidth else {
            throw .inconsistent(detail: "head '\(task)' (clfa) reads text states of width \(head.textWidth) (mlp_text.fc1.weight) but the text encoder gives \(textWidth); retrain the head for this encoder or fix text_encoder in \(manifestPath)")
        }
        if let want = head.imageWidth {
            guard let have = imageWidth else {
                throw .inconsistent(detail: "head '\(task)' (clfa) has image layers (mlp_image) but the bundle has no image_encoder; add one to \(manifestPath)")
            }
            guard want == have else {
                throw .inconsistent(detail: "head '\(task)' (clfa) reads image tokens of width \(want) (mlp_image.fc1.weight) but the image encoder gives \(have)")
            }
        }
        guard head.labelCount == decision.labels.count else {
            throw .inconsistent(detail: "head '\(task)' (clfa) has \(decision.labels.count) labels in \(manifestPath) but its classifier.weight gives \(head.labelCount) outputs")
        }
        self.task = task
        self.head = head
        self.decision = decision
    }

    func label(_ features: BatchFeatures) throws(InferenceError) -> [TaskLabel?] {
        let batch = features.batchSize
        let hasImage = features.imageRow.map { $0 != nil }
        var image: Tensor?
        if head.imageWidth != nil, let regions = features.image?.regions, regions.rank == 3 {
            // Scatter the image rows to batch positions; posts without one keep zeros (the
            // head's no-image rule decides what they attend to).
            let k = regions.shape[1], d = regions.shape[2]
            var full = Tensor(zeros: [batch, k, d])
            for (b, row) in features.imageRow.enumerated() {
                guard let row else { continue }
                full.data.replaceSubrange((b * k * d)..<((b + 1) * k * d), with: regions.data[(row * k * d)..<((row + 1) * k * d)])
            }
            image = full
        }
        let output = try head.forward(text: features.textStates, textLengths: features.textLengths,
                                      image: image, hasImage: image == nil ? [Bool](repeating: false, count: batch) : hasImage)
        let c = output.probabilities.lastDimension
        return (0..<batch).map { b in
            decision.taskLabel(task: task, head: headName, probabilities: output.probabilities.data[(b * c)..<((b + 1) * c)])
        }
    }
}

extension CLFATaskHead {
    /// The `clfa` head of a manifest entry (`HeadRegistry`): its weights file and config, whose
    /// `text_length` must cover the text encoder's `max_tokens`.
    static func make(_ entry: BundleManifest.Head, context: ModelBundle.HeadContext) throws(ModelLoadError) -> any TaskHead {
        let config = try context.config(CLFAConfig.self, of: entry) ?? CLFAConfig()
        guard context.maxTokens <= config.textLength else {
            throw .invalidConfig(path: context.manifestPath, detail: "\(context.name(entry)) reads at most \(config.textLength) tokens (config.text_length) but text_encoder.max_tokens is \(context.maxTokens); make them agree")
        }
        let head = try CLFAHead(weights: try context.weights(entry), config: config)
        return try CLFATaskHead(task: entry.task, head: head, decision: context.decision(entry), textWidth: context.text.encoder.hiddenSize,
                                imageWidth: context.image?.regionWidth, manifestPath: context.manifestPath)
    }
}
