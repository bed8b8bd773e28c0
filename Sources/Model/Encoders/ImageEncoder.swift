/// What an image encoder gives the heads for a batch of B preprocessed images.
public struct ImageEncoding: Sendable {
    /// Region (or token) vectors, `[B, K, d]`: EfficientNet's 7x7 feature-map cells, ViT's CLS + patches.
    public var regions: Tensor
    /// One vector per image, `[B, d]` (global average of the regions, or the CLS token).
    public var pooled: Tensor
    /// Class logits `[B, C]` where the encoder has a classifier (EfficientNet's 1000 ImageNet classes).
    public var logits: Tensor?

    public init(regions: Tensor, pooled: Tensor, logits: Tensor?) {
        self.regions = regions
        self.pooled = pooled
        self.logits = logits
    }
}

/// An image encoder chosen by a bundle's manifest (`efficientnet_lite`, `vit`, ...).
///
/// This is a seam because the heads read "regions" from whichever encoder the bundle names; the
/// encoders share nothing else. Implementations are immutable after loading and thread-safe.
public protocol ImageEncoder: Sendable {
    /// How a decoded image becomes this encoder's input (size, crop, normalisation, layout).
    var preprocess: ImagePreprocessConfig { get }
    /// Class names, one per logit, where the encoder has a classifier.
    var classNames: [String]? { get }
    /// Width of one region vector (`d`).
    var regionWidth: Int { get }
    /// Encodes a batch: `pixels` holds B images back to back, each `preprocess.valuesPerImage`
    /// values in `preprocess.layout`.
    func encode(_ pixels: [Float], batch: Int) throws(InferenceError) -> ImageEncoding
}
