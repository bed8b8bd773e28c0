/// How an encoder wants its pictures: carried in a model bundle's manifest
/// (JSON keys in snake_case), so adding an encoder never needs a code edit.
///
/// The pipeline, in order:
/// 1. resize (`resize_mode`, `filter`), computing only the pixels that survive the crop;
/// 2. clamp to [0, 255];
/// 3. `x * rescale_factor`, then `(x - mean[c]) / std[c]`;
/// 4. write Float32 in `layout` order.
public struct ImagePreprocessConfig: Codable, Sendable, Equatable {
    /// How the picture is brought to `width` x `height`.
    public enum ResizeMode: String, Codable, Sendable {
        /// Resize straight to width x height; the aspect ratio is not kept (CLFA's ViT).
        case squash
        /// Resize so the shorter side is `shortestSide` (the longer one is
        /// `floor(shortestSide * long / short)`, as torchvision does), then
        /// cut the centre width x height; the crop starts at
        /// `floor((resized - cropped) / 2)` on each axis (CLIP).
        case shortestSideCenterCrop = "shortest_side_center_crop"
    }

    /// The resampling filter. Both are Pillow's antialiased filters
    /// (`Image.resize` with BILINEAR / BICUBIC): when shrinking, the filter is
    /// widened by the scale factor so every input pixel contributes; when
    /// enlarging, it is the plain triangle / Keys cubic (a = -0.5) with
    /// pixel centres at i + 0.5 (align_corners = false). Unlike Pillow's 8-bit
    /// path, the intermediate result is kept in Float32 (not rounded or clamped
    /// between the two passes), and clamped to [0, 255] once at the end.
    public enum Filter: String, Codable, Sendable {
        case bilinear, bicubic

        /// Half-width of the kernel at scale 1.
        var support: Double { self == .bilinear ? 1 : 2 }

        /// The kernel, as in Pillow's `Resample.c`.
        func weight(_ x: Double) -> Double {
            let x = abs(x)
            switch self {
            case .bilinear:
                return x < 1 ? 1 - x : 0
            case .bicubic:
                let a = -0.5
                if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
                if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
                return 0
            }
        }
    }

    /// Order of the output tensor.
    public enum Layout: String, Codable, Sendable {
        /// Channels first: [3, height, width] (PyTorch).
        case nchw
        /// Channels last: [height, width, 3] (TFLite-style).
        case nhwc
    }

    /// Output width in pixels.
    public var width: Int
    /// Output height in pixels.
    public var height: Int
    public var resizeMode: ResizeMode
    /// Shorter side after the resize in `shortestSideCenterCrop` mode; nil
    /// means `max(width, height)`. Ignored by `squash`.
    public var shortestSide: Int?
    public var filter: Filter
    /// Multiplies the 0...255 samples first (1/255 maps them to [0, 1]; 1 keeps them).
    public var rescaleFactor: Float
    /// Per-channel mean (R, G, B), subtracted after rescaling.
    public var mean: [Float]
    /// Per-channel standard deviation (R, G, B), divided by last.
    public var std: [Float]
    public var layout: Layout
    /// Let libjpeg decode at 1/2, 1/4 or 1/8 scale when the picture stays at
    /// least as large as the resize needs (the resize then starts from fewer pixels).
    public var dctDownscale: Bool

    /// - Parameters: see the properties.
    public init(width: Int, height: Int, resizeMode: ResizeMode = .squash, shortestSide: Int? = nil,
                filter: Filter = .bilinear, rescaleFactor: Float = 1 / 255,
                mean: [Float] = [0, 0, 0], std: [Float] = [1, 1, 1],
                layout: Layout = .nchw, dctDownscale: Bool = true) {
        self.width = width
        self.height = height
        self.resizeMode = resizeMode
        self.shortestSide = shortestSide
        self.filter = filter
        self.rescaleFactor = rescaleFactor
        self.mean = mean
        self.std = std
        self.layout = layout
        self.dctDownscale = dctDownscale
    }

    /// ImageNet statistics used by most torchvision-trained encoders.
    public static let imageNetMean: [Float] = [0.485, 0.456, 0.406]
    public static let imageNetStd: [Float] = [0.229, 0.224, 0.225]

    /// CLFA's ViT-B/32 input (MODEL-SPEC): squash to 224x224, bilinear, ImageNet statistics, NCHW.
    public static let clfaViT = ImagePreprocessConfig(
        width: 224, height: 224, resizeMode: .squash, filter: .bilinear,
        mean: imageNetMean, std: imageNetStd, layout: .nchw)

    /// CLIP's input: shortest side 224 bicubic, centre crop 224, CLIP statistics, NCHW.
    public static let clip = ImagePreprocessConfig(
        width: 224, height: 224, resizeMode: .shortestSideCenterCrop, shortestSide: 224, filter: .bicubic,
        mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711], layout: .nchw)

    /// The shorter side after resizing in centre-crop mode.
    public var effectiveShortestSide: Int { shortestSide ?? max(width, height) }

    /// Number of Float32 values one picture fills.
    public var valuesPerImage: Int { 3 * width * height }

    /// The DCT downscaling the decoder may use for this config.
    public var jpegDownscale: JPEGDownscale {
        guard dctDownscale else { return .none }
        switch resizeMode {
        case .squash: return .atLeast(width: width, height: height)
        case .shortestSideCenterCrop: return .shortestSideAtLeast(effectiveShortestSide)
        }
    }

    /// Checks the values a bundle could get wrong.
    public func validate() throws(PreprocessError) {
        guard (1...8192).contains(width), (1...8192).contains(height) else {
            throw .invalidConfig("output size \(width)x\(height) must be 1...8192 on each side")
        }
        guard mean.count == 3, std.count == 3 else {
            throw .invalidConfig("mean and std need 3 values (R, G, B), got \(mean.count) and \(std.count)")
        }
        guard std.allSatisfy({ $0.isFinite && $0 != 0 }), mean.allSatisfy(\.isFinite), rescaleFactor.isFinite else {
            throw .invalidConfig("mean, std and rescale_factor must be finite and std non-zero")
        }
        if resizeMode == .shortestSideCenterCrop {
            let side = effectiveShortestSide
            guard (1...16384).contains(side), side >= max(width, height) else {
                throw .invalidConfig("shortest_side \(side) must be at least the crop size \(width)x\(height)")
            }
        }
    }

    enum CodingKeys: String, CodingKey {
        case width, height, filter, mean, std, layout
        case resizeMode = "resize_mode", shortestSide = "shortest_side"
        case rescaleFactor = "rescale_factor", dctDownscale = "dct_downscale"
    }

    /// Decodes with defaults for every key but width and height.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        width = try c.decode(Int.self, forKey: .width)
        height = try c.decode(Int.self, forKey: .height)
        resizeMode = try c.decodeIfPresent(ResizeMode.self, forKey: .resizeMode) ?? .squash
        shortestSide = try c.decodeIfPresent(Int.self, forKey: .shortestSide)
        filter = try c.decodeIfPresent(Filter.self, forKey: .filter) ?? .bilinear
        rescaleFactor = try c.decodeIfPresent(Float.self, forKey: .rescaleFactor) ?? 1 / 255
        mean = try c.decodeIfPresent([Float].self, forKey: .mean) ?? [0, 0, 0]
        std = try c.decodeIfPresent([Float].self, forKey: .std) ?? [1, 1, 1]
        layout = try c.decodeIfPresent(Layout.self, forKey: .layout) ?? .nchw
        dctDownscale = try c.decodeIfPresent(Bool.self, forKey: .dctDownscale) ?? true
    }
}

/// Errors of the preprocessing step.
public enum PreprocessError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The config cannot be used (says which value and why).
    case invalidConfig(String)
    /// The caller's buffer cannot hold one picture.
    case outputTooSmall(needed: Int, got: Int)

    public var description: String {
        switch self {
        case let .invalidConfig(why): return "invalid image preprocessing config: \(why)"
        case let .outputTooSmall(needed, got): return "output buffer has \(got) floats, one image needs \(needed)"
        }
    }
}
