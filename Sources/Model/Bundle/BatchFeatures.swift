/// Everything the encoders computed for one batch: what every head reads.
///
/// Posts are indexed 0..<B in batch order. Posts without an image (or whose image failed) have
/// no row in `image`; `imageRow[b]` maps a post to its row.
public struct BatchFeatures: Sendable {
    /// The text encoder's input ids per post ([CLS] … [SEP], truncated).
    public var tokenIDs: [[Int]]
    /// Last hidden states, `[B, L, d]`, L the longest post's length (padding rows are not meaningful).
    public var textStates: Tensor
    /// Valid tokens per post.
    public var textLengths: [Int]
    /// The input of text encoder layers that heads with adapters start from (`TaskHead.textLayerInput`),
    /// packed `[sum(textLengths), d]`, by layer index.
    public var textLayerInputs: [Int: Tensor] = [:]
    /// Masked-mean sentence vectors, `[B, d]`.
    public var sentenceVectors: Tensor
    /// Words per post (normalised as the tokenizer normalises) with the range of their pieces in
    /// `tokenIDs[b]`; words cut by truncation are left out.
    public var words: [[TokenizedWords.Word]]
    /// The image encoder's output for the posts that have an image, in batch order.
    public var image: ImageEncoding?
    /// For each post, its row in `image`, or nil.
    public var imageRow: [Int?]

    public var batchSize: Int { tokenIDs.count }
    public var paddedLength: Int { textStates.shape.count == 3 ? textStates.shape[1] : 0 }
}

/// A head as a bundle runs it: reads the batch's features, gives one label per post (or nil where
/// the task does not apply, e.g. correlation for a post without an image).
///
/// The seam exists because the manifest, not code, chooses each task's architecture.
public protocol TaskHead: Sendable {
    /// The task name in output records.
    var task: String { get }
    /// What the head calls itself in output records, e.g. `clfa` or `zero-shot-imagenet`.
    var headName: String { get }
    /// The text encoder layer whose input the head starts from with its own adapted layers, or
    /// nil when it reads the shared final states.
    var textLayerInput: Int? { get }
    /// Labels one batch.
    func label(_ features: BatchFeatures) throws(InferenceError) -> [TaskLabel?]
}

extension TaskHead {
    public var textLayerInput: Int? { nil }
}
