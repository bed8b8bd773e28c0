/// The CLFA sarcasm head (`clfa` kind) over a batch's features: the text encoder's token states
/// and, for posts with an image, the image encoder's regions as image tokens.
///
/// A head fine-tuned with a text adapter reads the states of its own copy of the encoder's top
/// layers (adapters merged), run from the shared encoder's input to the first adapted layer.
struct CLFATaskHead: TaskHead {
    let task: String
    let head: CLFAHead
    let decision: LabelDecision
    /// The encoder with the head's adapter merged, and the first layer it changes.
    let adaptedText: (encoder: BertEncoder, firstLayer: Int)?
    var headName: String { head.imageWidth == nil ? "clfa-text-only" : "clfa" }
    var textLayerInput: Int? { adaptedText?.firstLayer }

    init(task: String, head: CLFAHead, decision: LabelDecision, textWidth: Int, imageWidth: Int?,
         adaptedText: (encoder: BertEncoder, firstLayer: Int)? = nil, manifestPath: String) throws(ModelLoadError) {
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
        self.adaptedText = adaptedText
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
        var textStates = features.textStates
        if let adaptedText {
            guard let input = features.textLayerInputs[adaptedText.firstLayer] else {
                throw .shapeMismatch(expected: [adaptedText.firstLayer], found: features.textLayerInputs.keys.sorted(),
                                     context: "head '\(task)': the text encoder kept no input of layer \(adaptedText.firstLayer)")
            }
            textStates = try adaptedText.encoder.forward(fromLayer: adaptedText.firstLayer, packedInput: input,
                                                         lengths: features.textLengths).tokenStates
        }
        let output = try head.forward(text: textStates, textLengths: features.textLengths,
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
        let adapted = try context.adaptedText(entry)
        return try CLFATaskHead(task: entry.task, head: head, decision: context.decision(entry), textWidth: context.text.encoder.hiddenSize,
                                imageWidth: context.image?.regionWidth, adaptedText: adapted, manifestPath: context.manifestPath)
    }
}
