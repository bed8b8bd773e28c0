import Foundation

/// A Hugging Face `preprocessor_config.json` of a ViT checkpoint (`ViTImageProcessor`, or the older
/// `ViTFeatureExtractor`), and its mapping onto this engine's `ImagePreprocessConfig`.
///
/// Missing keys take `ViTImageProcessor`'s defaults (resize to 224x224 bilinear, rescale by 1/255,
/// normalise with mean = std = 0.5), because that is what transformers does with such a file.
public struct ViTImageProcessorConfig: Decodable, Sendable, Equatable {
    /// PIL's resampling codes, as HF stores them (`resample`).
    public enum PILResample: Int, Sendable {
        case nearest = 0, lanczos = 1, bilinear = 2, bicubic = 3, box = 4, hamming = 5
    }

    /// `do_resize`; the engine resizes either way (see `preprocessConfig(path:)`).
    public var doResize: Bool
    /// Target `[height, width]`; HF writes either one number or `{"height": h, "width": w}`.
    public var size: ViTConfig.PixelSize
    /// The PIL code; only bilinear (2) and bicubic (3) map onto this engine's filters.
    public var resample: Int
    /// Whether the 0...255 samples are multiplied by `rescaleFactor` (`do_rescale`).
    public var doRescale: Bool
    /// `rescale_factor`, 1/255 by default.
    public var rescaleFactor: Double
    /// Whether `imageMean` and `imageStd` are applied (`do_normalize`).
    public var doNormalize: Bool
    /// Per-channel mean (R, G, B) after rescaling (`image_mean`).
    public var imageMean: [Float]
    /// Per-channel standard deviation (R, G, B) (`image_std`).
    public var imageStd: [Float]

    enum CodingKeys: String, CodingKey {
        case doResize = "do_resize", size, resample, doRescale = "do_rescale", rescaleFactor = "rescale_factor"
        case doNormalize = "do_normalize", imageMean = "image_mean", imageStd = "image_std"
    }

    /// `{"height": h, "width": w}`, the newer spelling of `size`.
    private struct HeightWidth: Decodable {
        let height: Int
        let width: Int
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        doResize = try c.decodeIfPresent(Bool.self, forKey: .doResize) ?? true
        if let side = try? c.decode(Int.self, forKey: .size) {
            size = ViTConfig.PixelSize(side)
        } else if let pair = try? c.decode(HeightWidth.self, forKey: .size) {
            size = ViTConfig.PixelSize(pair.height, pair.width)
        } else if c.contains(.size) {
            // ViTImageProcessor itself rejects `shortest_edge` and friends: it always squashes.
            throw DecodingError.dataCorruptedError(forKey: .size, in: c, debugDescription: "ViT's size must be a number or {\"height\", \"width\"}")
        } else {
            size = ViTConfig.PixelSize(224)
        }
        resample = try c.decodeIfPresent(Int.self, forKey: .resample) ?? PILResample.bilinear.rawValue
        doRescale = try c.decodeIfPresent(Bool.self, forKey: .doRescale) ?? true
        rescaleFactor = try c.decodeIfPresent(Double.self, forKey: .rescaleFactor) ?? 1.0 / 255
        doNormalize = try c.decodeIfPresent(Bool.self, forKey: .doNormalize) ?? true
        imageMean = try c.decodeIfPresent([Float].self, forKey: .imageMean) ?? [0.5, 0.5, 0.5]
        imageStd = try c.decodeIfPresent([Float].self, forKey: .imageStd) ?? [0.5, 0.5, 0.5]
    }

    /// The engine's preprocessing for this file: squash-resize (ViT never keeps the aspect ratio),
    /// the file's filter, rescale and normalisation, NCHW.
    ///
    /// `do_resize: false` still resizes to `size`: posts carry pictures of any size and the model's
    /// position table fixes its input size, so there is nothing else to do with them.
    public func preprocessConfig(path: String) throws(ModelLoadError) -> ImagePreprocessConfig {
        let filter: ImagePreprocessConfig.Filter
        switch PILResample(rawValue: resample) {
        case .bilinear: filter = .bilinear
        case .bicubic: filter = .bicubic
        default:
            throw .invalidConfig(path: path, detail: "resample \(resample) is not supported (2 = bilinear, 3 = bicubic)")
        }
        let config = ImagePreprocessConfig(
            width: size.width, height: size.height, resizeMode: .squash, filter: filter,
            rescaleFactor: doRescale ? Float(rescaleFactor) : 1,
            mean: doNormalize ? imageMean : [0, 0, 0], std: doNormalize ? imageStd : [1, 1, 1], layout: .nchw)
        do { try config.validate() } catch { throw .invalidConfig(path: path, detail: error.description) }
        return config
    }

    /// The preprocessing of the checkpoint folder `directory`: from its `preprocessor_config.json`
    /// when present, otherwise CLFA's (`ImagePreprocessConfig.clfaViT`: squash bilinear, ImageNet
    /// statistics) at `imageSize`, the model's own input size.
    public static func preprocessConfig(directory: URL, imageSize: ViTConfig.PixelSize) throws(ModelLoadError) -> ImagePreprocessConfig {
        let url = directory.appendingPathComponent("preprocessor_config.json")
        guard FileManager.default.fileExists(atPath: url.path) else {
            var config = ImagePreprocessConfig.clfaViT
            config.width = imageSize.width
            config.height = imageSize.height
            return config
        }
        let parsed: ViTImageProcessorConfig
        do {
            parsed = try JSONDecoder().decode(ViTImageProcessorConfig.self, from: Data(contentsOf: url))
        } catch {
            throw .invalidConfig(path: url.path, detail: String(describing: error))
        }
        return try parsed.preprocessConfig(path: url.path)
    }
}
