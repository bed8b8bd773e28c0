import Foundation

/// What the CLFA head gives for a batch of B posts.
public struct CLFAOutput: Sendable {
    /// `[B, C]` classifier outputs (label 0 = not_sarcastic, 1 = sarcastic for the paper's head).
    public let logits: Tensor
    /// `[B, C]` softmax of `logits`.
    public let probabilities: Tensor
    /// When requested, the intermediate results by name: `text` `[B, L, h]` (mapped text tokens);
    /// `image` `[B, Kmax, h]` (the image tokens each post attends to after `mlp_image`: its own K,
    /// or the K0 rows of the learned no-image token; zero rows where a post has fewer or none);
    /// `layer.{i}` `[B, L, h]`; `pooled` `[B, h]`. Rows past a post's length are padding.
    public let stages: [String: Tensor]
}

/// The CLFA sarcasm head (MODEL-SPEC.md, "Sarcasm head: CLFA"): mapping nets that bring text and
/// image token states to one width, attention layers in which the text attends to itself and to
/// the image, a masked mean over the text tokens, and a linear classifier.
///
/// Built from the authors' tensor names with every size read from the weights; a layer's
/// `textSelfAttn`, `imageCrossAttn` and feed-forward blocks are each optional, and there may be no
/// layers (a text-only head: mapping net, pooling, classifier). Immutable and thread-safe.
public struct CLFAHead: Sendable {
    /// The head's configuration.
    public let config: CLFAConfig
    let mlpText: CLFAMappingNet
    let mlpImage: CLFAMappingNet?
    /// `mlp_image(no_image_token)`, `[K0, h]`, for the learned-token rule.
    let mappedNoImageToken: Tensor?
    let layers: [CLFALayer]
    let classifier: Linear

    /// Width of the text token states the head takes (`d_t`, from `mlp_text.fc1.weight`).
    public var textWidth: Int { mlpText.fc1.inFeatures }
    /// Width of the image token states (`d_i`, from `mlp_image.fc1.weight`); `nil` for a text-only head.
    public var imageWidth: Int? { mlpImage?.fc1.inFeatures }
    /// The width the text and image tokens are mapped to and attended in (`h`).
    public var hiddenWidth: Int { mlpText.fc2.outFeatures }
    /// The number of labels (rows of `classifier.weight`).
    public var labelCount: Int { classifier.outFeatures }
    /// The number of `attention_net.layer.{i}` layers in the weights (may be 0).
    public var layerCount: Int { layers.count }
    /// Rows of the learned no-image token (`K0`), when the head uses one.
    public var noImageTokenCount: Int? { mappedNoImageToken?.rowCount }

    init(config: CLFAConfig, mlpText: CLFAMappingNet, mlpImage: CLFAMappingNet?, mappedNoImageToken: Tensor?,
         layers: [CLFALayer], classifier: Linear) {
        self.config = config
        self.mlpText = mlpText
        self.mlpImage = mlpImage
        self.mappedNoImageToken = mappedNoImageToken
        self.layers = layers
        self.classifier = classifier
    }

    /// Loads `config.json` and the weights file from a head folder.
    public init(directory: URL, weightsFile: String = "model.safetensors") throws(ModelLoadError) {
        let checkpoint = try Checkpoint<CLFAConfig>(directory: directory, weightsFile: weightsFile)
        try self.init(weights: checkpoint.weights, config: checkpoint.config)
    }

    /// Classifies a batch of posts.
    ///
    /// - Parameters:
    ///   - text: `[B, L, d_t]` text-encoder token states, padded; post b's first `textLengths[b]`
    ///     rows are its tokens (`[CLS]` … `[SEP]`). Padding is masked out of attention and pooling.
    ///   - textLengths: valid tokens per post, each in `0...L`.
    ///   - image: `[B, K, d_i]` image-encoder tokens (all valid), or `nil` when no post has an
    ///     image. Rows of posts whose `hasImage` is false are ignored. A text-only head ignores it.
    ///   - hasImage: per post, whether `image` holds its image; posts without one follow
    ///     `config.noImage`.
    ///   - keepStages: also return the intermediate results (see `CLFAOutput.stages`).
    public func forward(text: Tensor, textLengths: [Int], image: Tensor?, hasImage: [Bool],
                        keepStages: Bool = false) throws(InferenceError) -> CLFAOutput {
        guard text.rank == 3, text.shape[2] == textWidth else {
            throw .shapeMismatch(expected: [-1, -1, textWidth], found: text.shape, context: "CLFA text states")
        }
        let batch = text.shape[0], length = text.shape[1]
        guard textLengths.count == batch, hasImage.count == batch else {
            throw .shapeMismatch(expected: [batch, batch], found: [textLengths.count, hasImage.count],
                                 context: "CLFA textLengths and hasImage (one of each per post)")
        }
        if let bad = textLengths.first(where: { $0 < 0 || $0 > length }) {
            throw .shapeMismatch(expected: [length], found: [bad], context: "CLFA textLengths (each in 0...L)")
        }
        var stages: [String: Tensor] = [:]
        var states = try mlpText(text.reshapedRows(textWidth))
        if keepStages { stages["text"] = try states.reshaped([batch, length, hiddenWidth]) }
        let keys = try imageKeys(image: image, hasImage: hasImage)
        if keepStages, let keys { stages["image"] = try keys.stage(batch: batch, width: hiddenWidth) }
        let textMask = MultiHeadAttention.additiveMask(lengths: textLengths, paddedLength: length, hiddenValue: Self.maskValue)

        for (i, layer) in layers.enumerated() {
            if let selfAttention = layer.textSelfAttention {
                states = try selfAttention(states, attendingTo: states, batch: batch, queryLength: length,
                                           keyLength: length, keyMask: textMask)
            }
            if let crossAttention = layer.imageCrossAttention, let keys, !keys.posts.isEmpty {
                let everyPost = keys.posts.count == batch
                // Under the text-only rule only the posts with an image attend: run them as one
                // smaller batch and put their rows back, leaving the others' states unchanged.
                let queries = everyPost ? states : states.postBlocks(keys.posts, rowsPerPost: length)
                let attended = try crossAttention(queries, attendingTo: keys.states, batch: keys.posts.count,
                                                  queryLength: length, keyLength: keys.length, keyMask: keys.mask)
                if everyPost { states = attended } else { try states.setPostBlocks(keys.posts, rowsPerPost: length, from: attended) }
            }
            if let feedForward = layer.feedForward { states = try feedForward(states) }
            if keepStages { stages["layer.\(i)"] = try states.reshaped([batch, length, hiddenWidth]) }
        }

        let pooled = try Pooling.maskedMean(states, lengths: textLengths, paddedLength: length)
        if keepStages { stages["pooled"] = pooled }
        let logits = try classifier(pooled)
        var probabilities = logits
        Softmax.apply(&probabilities)
        return CLFAOutput(logits: logits, probabilities: probabilities, stages: stages)
    }

    /// The spec's additive key mask for hidden keys, `(1 - mask) * -10000`.
    static let maskValue: Float = -10_000
}
