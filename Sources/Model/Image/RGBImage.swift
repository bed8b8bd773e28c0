/// A decoded picture: 8-bit RGB, interleaved (`r, g, b, r, g, b, ...`), rows
/// top to bottom with no padding between them.
public struct RGBImage: Sendable, Equatable {
    /// Width in pixels (> 0).
    public let width: Int
    /// Height in pixels (> 0).
    public let height: Int
    /// `width * height * 3` bytes.
    public let pixels: [UInt8]

    /// Wraps pixels that are already interleaved RGB.
    /// - Throws: `ImageError.badDimensions` when the sizes do not agree.
    public init(width: Int, height: Int, pixels: [UInt8]) throws(ImageError) {
        guard width > 0, height > 0 else { throw .badDimensions(width: width, height: height, bytes: pixels.count) }
        let (area, o1) = width.multipliedReportingOverflow(by: height)
        let (bytes, o2) = area.multipliedReportingOverflow(by: 3)
        guard !o1, !o2, bytes == pixels.count else {
            throw .badDimensions(width: width, height: height, bytes: pixels.count)
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// For callers inside the module that have already checked the sizes.
    init(unchecked width: Int, _ height: Int, _ pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The pixel at column `x`, row `y` (for tests and debugging; not for hot loops).
    public subscript(x: Int, y: Int) -> (r: UInt8, g: UInt8, b: UInt8) {
        let i = (y * width + x) * 3
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }
}

/// Errors about in-memory images (as opposed to their encoded bytes).
public enum ImageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Width, height and pixel count do not agree.
    case badDimensions(width: Int, height: Int, bytes: Int)

    public var description: String {
        switch self {
        case let .badDimensions(w, h, n):
            return "image of \(w)x\(h) needs \(w)x\(h)x3 bytes, got \(n)"
        }
    }
}

/// EXIF orientation (tag 0x0112): how the stored pixels must be transformed
/// to show the picture upright. Raw values 1...8 as in the EXIF/TIFF spec.
public enum ImageOrientation: Int, Sendable, Equatable, CaseIterable, Codable {
    /// Stored upright.
    case up = 1
    /// Mirrored left-right.
    case upMirrored = 2
    /// Rotated 180 degrees.
    case down = 3
    /// Mirrored top-bottom.
    case downMirrored = 4
    /// Transposed (mirror across the main diagonal).
    case leftMirrored = 5
    /// Needs a 90 degree clockwise turn.
    case right = 6
    /// Transversed (mirror across the anti-diagonal).
    case rightMirrored = 7
    /// Needs a 90 degree counter-clockwise turn.
    case left = 8

    /// Whether upright width and height are the stored height and width.
    public var swapsDimensions: Bool { rawValue >= 5 }
}

extension RGBImage {
    /// Returns the picture as it should be displayed, given its EXIF
    /// orientation (the same result as Pillow's `ImageOps.exif_transpose`).
    public func applying(_ orientation: ImageOrientation) -> RGBImage {
        if orientation == .up { return self }
        let w = width, h = height
        let outW = orientation.swapsDimensions ? h : w
        let outH = orientation.swapsDimensions ? w : h
        // For output pixel (u, v) the source is (sx, sy) = (a*u + b*v + c, d*u + e*v + f);
        // one affine map per orientation keeps a single tight loop below.
        let (a, b, c, d, e, f): (Int, Int, Int, Int, Int, Int)
        switch orientation {
        case .up: (a, b, c, d, e, f) = (1, 0, 0, 0, 1, 0)
        case .upMirrored: (a, b, c, d, e, f) = (-1, 0, w - 1, 0, 1, 0)
        case .down: (a, b, c, d, e, f) = (-1, 0, w - 1, 0, -1, h - 1)
        case .downMirrored: (a, b, c, d, e, f) = (1, 0, 0, 0, -1, h - 1)
        case .leftMirrored: (a, b, c, d, e, f) = (0, 1, 0, 1, 0, 0)
        case .right: (a, b, c, d, e, f) = (0, 1, 0, -1, 0, h - 1)
        case .rightMirrored: (a, b, c, d, e, f) = (0, -1, w - 1, -1, 0, h - 1)
        case .left: (a, b, c, d, e, f) = (0, -1, w - 1, 1, 0, 0)
        }
        let out = [UInt8](unsafeUninitializedCapacity: outW * outH * 3) { dst, count in
            pixels.withUnsafeBufferPointer { src in
                for v in 0..<outH {
                    var sx = b * v + c
                    var sy = e * v + f
                    var o = v * outW * 3
                    for _ in 0..<outW {
                        let i = (sy * w + sx) * 3
                        dst[o] = src[i]
                        dst[o + 1] = src[i + 1]
                        dst[o + 2] = src[i + 2]
                        o += 3
                        sx += a
                        sy += d
                    }
                }
            }
            count = outW * outH * 3
        }
        return RGBImage(unchecked: outW, outH, out)
    }
}
