/// Why a JPEG could not be decoded. Every case is about the input (or the
/// limits it broke), so a caller can dead-letter the record with
/// `description` and go on; none of them means the process is damaged.
public enum JPEGError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Zero bytes.
    case empty
    /// The data does not start with the JPEG SOI marker (FF D8).
    case notJPEG(leadingBytes: [UInt8])
    /// More compressed bytes than `JPEGDecodeLimits.maxBytes`.
    case tooManyBytes(size: Int, limit: Int)
    /// The header's width x height is over `JPEGDecodeLimits.maxPixels`
    /// (found before any pixel was decoded: a decompression bomb).
    case tooManyPixels(width: Int, height: Int, limit: Int)
    /// A progressive file with more scans than `JPEGDecodeLimits.maxScans`.
    case tooManyScans(limit: Int)
    /// Decoding would need more memory than `JPEGDecodeLimits.maxMemory` (found from the header
    /// before any image-sized buffer exists, or by libjpeg itself).
    case tooMuchMemory(detail: String, limit: Int)
    /// The data ends before the picture is complete.
    case truncated(detail: String)
    /// libjpeg found the data corrupt or unsupported; `detail` is its message.
    case corrupt(detail: String)
    /// A colour model that has no RGB meaning (e.g. two components).
    case unsupportedColorSpace(detail: String)
    /// The file could not be read at all.
    case unreadableFile(path: String, reason: String)
    /// A caller error (e.g. a DCT scale other than 1, 2, 4 or 8).
    case invalidArgument(String)

    /// A short stable identifier, for metrics labels and dead-letter records.
    public var code: String {
        switch self {
        case .empty: return "jpeg_empty"
        case .notJPEG: return "jpeg_not_jpeg"
        case .tooManyBytes: return "jpeg_too_many_bytes"
        case .tooManyPixels: return "jpeg_too_many_pixels"
        case .tooManyScans: return "jpeg_too_many_scans"
        case .tooMuchMemory: return "jpeg_too_much_memory"
        case .truncated: return "jpeg_truncated"
        case .corrupt: return "jpeg_corrupt"
        case .unsupportedColorSpace: return "jpeg_unsupported_color_space"
        case .unreadableFile: return "jpeg_unreadable_file"
        case .invalidArgument: return "jpeg_invalid_argument"
        }
    }

    public var description: String {
        switch self {
        case .empty:
            return "image is empty (0 bytes)"
        case let .notJPEG(lead):
            let hex = lead.prefix(4).map { byte -> String in
                let s = String(byte, radix: 16, uppercase: true)
                return s.count == 1 ? "0" + s : s
            }.joined(separator: " ")
            return "not a JPEG: it starts with \(hex.isEmpty ? "nothing" : hex), not FF D8"
        case let .tooManyBytes(size, limit):
            return "JPEG is \(Self.mebibytes(size)) MiB, over the limit of \(Self.mebibytes(limit)) MiB (setting image.max-bytes)"
        case let .tooManyPixels(w, h, limit):
            return "JPEG header says \(w)x\(h) = \(Self.megapixels(w * h)) Mpx, over the limit of \(Self.megapixels(limit)) Mpx (setting image.max-pixels)"
        case let .tooManyScans(limit):
            return "progressive JPEG has more than \(limit) scans (setting image.max-scans)"
        case let .tooMuchMemory(detail, limit):
            return "JPEG needs too much memory: \(detail), over the limit of \(Self.mebibytes(limit)) MiB per image (JPEGDecodeLimits.maxMemory); send a smaller picture, or a baseline rather than progressive one"
        case let .truncated(detail):
            return "JPEG is truncated: \(detail)"
        case let .corrupt(detail):
            return "JPEG is corrupt: \(detail)"
        case let .unsupportedColorSpace(detail):
            return "JPEG cannot be converted to RGB: \(detail)"
        case let .unreadableFile(path, reason):
            return "cannot read image file \(path): \(reason)"
        case let .invalidArgument(detail):
            return "invalid JPEG decode argument: \(detail)"
        }
    }

    /// One decimal place at most, without Foundation's formatters.
    static func megapixels(_ pixels: Int) -> String { oneDecimal(pixels, per: 1_000_000) }
    static func mebibytes(_ bytes: Int) -> String { oneDecimal(bytes, per: 1 << 20) }
    private static func oneDecimal(_ value: Int, per unit: Int) -> String {
        let tenths = (value * 10 + unit / 2) / unit
        return tenths % 10 == 0 ? "\(tenths / 10)" : "\(tenths / 10).\(tenths % 10)"
    }
}
