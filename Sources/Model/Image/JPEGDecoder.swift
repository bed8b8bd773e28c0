import CJPEG
import Foundation

/// Limits that turn hostile or absurd inputs into errors before they cost
/// memory or CPU. Defaults suit photos posted to social media.
public struct JPEGDecodeLimits: Sendable, Equatable, Codable {
    /// Most compressed bytes accepted (setting `image.max-bytes`).
    public var maxBytes: Int
    /// Most pixels (width x height from the header, before any DCT scaling)
    /// accepted (setting `image.max-pixels`). Checked before decoding.
    public var maxPixels: Int
    /// Most scans a progressive file may have (setting `image.max-scans`):
    /// each scan is a pass over the whole image, and can be a few bytes long.
    public var maxScans: Int

    /// Most bytes one decode may allocate: libjpeg's working memory (for a
    /// progressive file, a buffer of every coefficient: 2 bytes per pixel per
    /// component) plus the decoded pixels. Estimated from the header and
    /// checked before anything image-sized is allocated; libjpeg is given the
    /// same limit and refuses on its own beyond it. The default, 256 MiB,
    /// fits every file under the default pixel limit when decoded downscaled
    /// for a model, as the daemon does; several decodes at once need at most
    /// this much each.
    public var maxMemory: Int

    /// - Parameters: see the properties; the defaults are 32 MiB, 40 Mpx, 1000 scans and 256 MiB.
    public init(maxBytes: Int = 32 << 20, maxPixels: Int = 40_000_000, maxScans: Int = 1000,
                maxMemory: Int = 256 << 20) {
        self.maxBytes = maxBytes
        self.maxPixels = maxPixels
        self.maxScans = maxScans
        self.maxMemory = maxMemory
    }

    enum CodingKeys: String, CodingKey {
        case maxBytes = "max_bytes", maxPixels = "max_pixels", maxScans = "max_scans", maxMemory = "max_memory"
    }

    /// Decodes the limits; `max_memory` may be absent (older configs), then it is the default.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(maxBytes: try c.decode(Int.self, forKey: .maxBytes),
                  maxPixels: try c.decode(Int.self, forKey: .maxPixels),
                  maxScans: try c.decode(Int.self, forKey: .maxScans),
                  maxMemory: try c.decodeIfPresent(Int.self, forKey: .maxMemory) ?? (256 << 20))
    }
}

/// How much libjpeg may shrink the picture in the DCT domain while decoding
/// (1/2, 1/4 or 1/8 of each side): far cheaper than decoding everything and
/// resizing, and the resize that follows still antialiases the rest.
public enum JPEGDownscale: Sendable, Equatable {
    /// Full size.
    case none
    /// A fixed scale 1/n, n in {1, 2, 4, 8}.
    case denominator(Int)
    /// The largest reduction that keeps the upright picture at least this big
    /// (for a squash resize to width x height).
    case atLeast(width: Int, height: Int)
    /// The largest reduction that keeps the shorter side at least this long
    /// (for a shortest-side resize).
    case shortestSideAtLeast(Int)
}

/// Colour model of the coded data.
public enum JPEGColorSpace: String, Sendable, Equatable {
    case gray, rgb, ycbcr, cmyk, ycck, unknown
}

/// What the headers of a JPEG say, read without decoding pixels.
public struct JPEGHeader: Sendable, Equatable {
    /// Stored width and height (before orientation and scaling).
    public var width: Int
    public var height: Int
    public var components: Int
    public var colorSpace: JPEGColorSpace
    public var progressive: Bool
    /// The Adobe APP14 transform flag (0: CMYK/RGB as is, 1: YCbCr, 2: YCCK), nil without the marker.
    public var adobeTransform: Int?
    /// EXIF orientation, `.up` when absent.
    public var orientation: ImageOrientation
    /// Bytes libjpeg needs to decode it at full size, estimated from the header: the whole-image
    /// coefficient buffer of a multi-scan (progressive) file, plus row buffers and tables.
    public var decoderMemory: Int
    /// The 8x8 blocks a multi-scan file codes, each with at least one bit (0 for a single-scan
    /// file): a complete file has at least `codedBlocks / 8` bytes.
    public var codedBlocks: Int
}

/// A decoded JPEG and how it was decoded.
public struct DecodedJPEG: Sendable, Equatable {
    /// The picture, upright (EXIF orientation applied unless disabled).
    public var image: RGBImage
    /// The file's headers.
    public var header: JPEGHeader
    /// The DCT scale used: the image is about 1/scaleDenominator of the stored size.
    public var scaleDenominator: Int
    /// Recoverable problems libjpeg reported (e.g. extraneous bytes); the pixels are still usable.
    public var warnings: Int
}

/// A reentrant JPEG decoder over libjpeg(-turbo). A value type with no
/// shared state: one instance may be used from many threads at once.
///
/// Baseline and progressive files; grayscale, YCbCr, RGB, CMYK and YCCK
/// all come out as RGB. CMYK/YCCK samples are taken as Adobe-inverted (what
/// Photoshop and libjpeg-turbo write), exactly as Pillow does for every CMYK
/// JPEG; the Adobe marker's transform flag tells libjpeg whether the data is
/// CMYK (0) or YCCK (2), and it undoes the YCC part itself.
public struct JPEGDecoder: Sendable {
    /// The limits checked before decoding.
    public var limits: JPEGDecodeLimits
    /// Whether to apply the EXIF orientation (on by default).
    public var appliesOrientation: Bool
    /// Whether libjpeg's warnings (corrupt but recoverable data, e.g. an
    /// entropy-coded segment that ends early, leaving grey rows) fail the
    /// decode. Off by default, as in Pillow: many real photos carry a few
    /// stray bytes. Data that simply runs out is always an error (`truncated`).
    public var treatsWarningsAsErrors: Bool

    /// - Parameters:
    ///   - limits: byte, pixel and scan limits.
    ///   - appliesOrientation: rotate/mirror per EXIF orientation.
    ///   - treatsWarningsAsErrors: strict mode, see the property.
    public init(limits: JPEGDecodeLimits = JPEGDecodeLimits(), appliesOrientation: Bool = true,
                treatsWarningsAsErrors: Bool = false) {
        self.limits = limits
        self.appliesOrientation = appliesOrientation
        self.treatsWarningsAsErrors = treatsWarningsAsErrors
    }

    /// Reads the headers only (cheap), checking the byte limit and the magic.
    public func readHeader(_ bytes: UnsafeRawBufferPointer) throws(JPEGError) -> JPEGHeader {
        try checkEnvelope(bytes)
        guard let base = bytes.baseAddress else { throw .empty }
        var raw = pcd_jpeg_header()
        var message = [CChar](repeating: 0, count: 256)
        let code = message.withUnsafeMutableBufferPointer { m in
            pcd_jpeg_read_header(base.assumingMemoryBound(to: UInt8.self), bytes.count,
                                 &raw, m.baseAddress, m.count)
        }
        if code != Int32(PCD_JPEG_OK) { throw Self.error(code: code, message: message, limits: limits) }
        let colorSpace: JPEGColorSpace
        switch raw.color_space {
        case Int32(PCD_JPEG_CS_GRAY): colorSpace = .gray
        case Int32(PCD_JPEG_CS_RGB): colorSpace = .rgb
        case Int32(PCD_JPEG_CS_YCBCR): colorSpace = .ycbcr
        case Int32(PCD_JPEG_CS_CMYK): colorSpace = .cmyk
        case Int32(PCD_JPEG_CS_YCCK): colorSpace = .ycck
        default: colorSpace = .unknown
        }
        return JPEGHeader(
            width: Int(raw.width), height: Int(raw.height), components: Int(raw.num_components),
            colorSpace: colorSpace, progressive: raw.progressive != 0,
            adobeTransform: raw.adobe_transform >= 0 ? Int(raw.adobe_transform) : nil,
            orientation: JPEGMarkers.orientation(in: bytes),
            decoderMemory: Int(clamping: raw.coefficient_blocks &* 128 &+ raw.working_bytes),
            codedBlocks: Int(clamping: raw.coded_blocks))
    }

    /// Decodes a JPEG held in memory.
    /// - Parameters:
    ///   - bytes: the whole file.
    ///   - downscale: how far libjpeg may shrink it while decoding.
    /// - Throws: `JPEGError`; never traps on bad input.
    public func decode(_ bytes: UnsafeRawBufferPointer, downscale: JPEGDownscale = .none) throws(JPEGError) -> DecodedJPEG {
        let header = try readHeader(bytes)
        let (area, overflow) = header.width.multipliedReportingOverflow(by: header.height)
        if overflow || area > limits.maxPixels {
            throw .tooManyPixels(width: header.width, height: header.height, limit: limits.maxPixels)
        }
        if header.colorSpace == .unknown {
            throw .unsupportedColorSpace(detail: "\(header.components) components with no known colour model")
        }
        let denom = try Self.denominator(for: header, downscale: downscale, orientation: appliesOrientation ? header.orientation : .up)
        // libjpeg's scaled size is ceil(size / denom).
        let outW = (header.width + denom - 1) / denom
        let outH = (header.height + denom - 1) / denom
        let channels = (header.colorSpace == .cmyk || header.colorSpace == .ycck) ? 4 : 3
        let capacity = outW * outH * channels
        try checkMemory(header, bytes: bytes.count, outputBytes: capacity)

        var output = pcd_jpeg_output()
        var code = Int32(PCD_JPEG_OK)
        var message = [CChar](repeating: 0, count: 256)
        let limits = self.limits
        let strict: Int32 = treatsWarningsAsErrors ? 1 : 0
        let pixels = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
            count = 0
            guard let out = buffer.baseAddress, let src = bytes.baseAddress else { return }
            code = message.withUnsafeMutableBufferPointer { m in
                pcd_jpeg_decode(src.assumingMemoryBound(to: UInt8.self), bytes.count,
                                Int32(denom), UInt64(limits.maxPixels), Int32(limits.maxScans), strict,
                                UInt64(max(1, limits.maxMemory - capacity)),
                                out, capacity, &output, m.baseAddress, m.count)
            }
            guard code == Int32(PCD_JPEG_OK), Int(output.width) == outW, Int(output.height) == outH,
                  Int(output.components) == channels else { return }
            if channels == 4 { Self.adobeCMYKToRGBInPlace(buffer, pixelCount: outW * outH) }
            count = outW * outH * 3
        }
        if code != Int32(PCD_JPEG_OK) { throw Self.error(code: code, message: message, limits: limits) }
        guard pixels.count == outW * outH * 3 else {
            // The shim and this file disagree on the output size: a bug, but
            // still reported as an error rather than a crash.
            throw .corrupt(detail: "decoder produced \(output.width)x\(output.height)x\(output.components), expected \(outW)x\(outH)x\(channels)")
        }
        var image = RGBImage(unchecked: outW, outH, pixels)
        if appliesOrientation { image = image.applying(header.orientation) }
        return DecodedJPEG(image: image, header: header, scaleDenominator: denom, warnings: Int(output.warnings))
    }

    /// Reads the headers of a JPEG held in an array.
    public func readHeader(_ bytes: [UInt8]) throws(JPEGError) -> JPEGHeader {
        let result: Result<JPEGHeader, JPEGError> = bytes.withUnsafeBytes { raw in
            do throws(JPEGError) { return .success(try readHeader(raw)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Decodes a JPEG held in an array.
    public func decode(_ bytes: [UInt8], downscale: JPEGDownscale = .none) throws(JPEGError) -> DecodedJPEG {
        let result: Result<DecodedJPEG, JPEGError> = bytes.withUnsafeBytes { raw in
            do throws(JPEGError) { return .success(try decode(raw, downscale: downscale)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Reads and decodes a file, refusing to read more than `limits.maxBytes`.
    public func decodeFile(atPath path: String, downscale: JPEGDownscale = .none) throws(JPEGError) -> DecodedJPEG {
        let bytes = try readFile(atPath: path)
        return try decode(bytes, downscale: downscale)
    }

    /// Reads at most `limits.maxBytes + 1` bytes, so a huge file is refused
    /// without being loaded.
    public func readFile(atPath path: String) throws(JPEGError) -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw .unreadableFile(path: path, reason: "no such file or no permission")
        }
        defer { try? handle.close() }
        let data: Data
        do {
            // One byte past the limit tells "over" from "exactly at" without reading the rest.
            data = try handle.read(upToCount: min(max(limits.maxBytes, 0), Int.max - 1) + 1) ?? Data()
        } catch {
            throw .unreadableFile(path: path, reason: "\(error)")
        }
        if data.count > limits.maxBytes {
            let end = (try? handle.seekToEnd()).map { Int(clamping: $0) }
            let size = max(end ?? data.count, data.count)
            throw .tooManyBytes(size: size, limit: limits.maxBytes)
        }
        return [UInt8](data)
    }

    // MARK: - Internals

    /// Cheap checks that need no libjpeg: size, limit, SOI marker.
    private func checkEnvelope(_ bytes: UnsafeRawBufferPointer) throws(JPEGError) {
        if bytes.isEmpty { throw .empty }
        if bytes.count > limits.maxBytes { throw .tooManyBytes(size: bytes.count, limit: limits.maxBytes) }
        if bytes.count < 2 || bytes[0] != 0xFF || bytes[1] != 0xD8 {
            throw .notJPEG(leadingBytes: Array(bytes.prefix(4)))
        }
    }

    /// Refuses, from the header alone, a file that cannot hold the picture it claims or whose
    /// decode would need more than `limits.maxMemory`: the guard against a few hundred bytes of
    /// progressive header that would make libjpeg allocate and zero a whole-image buffer.
    private func checkMemory(_ header: JPEGHeader, bytes: Int, outputBytes: Int) throws(JPEGError) {
        if header.codedBlocks / 8 > bytes {
            throw .truncated(detail: "the header says \(header.width)x\(header.height) in several scans (\(header.codedBlocks) blocks of 8x8, at least a bit each), but the file has only \(bytes) bytes; the data is missing or the header is forged")
        }
        let (needed, overflow) = header.decoderMemory.addingReportingOverflow(outputBytes)
        if overflow || needed > limits.maxMemory {
            let kind = header.progressive ? "progressive " : (header.codedBlocks > 0 ? "multi-scan " : "")
            let size = overflow ? "more memory than this machine can address" : "about \(JPEGError.mebibytes(needed)) MiB"
            throw .tooMuchMemory(detail: "the \(kind)\(header.width)x\(header.height) image needs \(size) to decode",
                                 limit: limits.maxMemory)
        }
    }

    /// The DCT scale for a request; orientation matters because the
    /// requested size is upright while libjpeg scales the stored picture.
    static func denominator(for header: JPEGHeader, downscale: JPEGDownscale, orientation: ImageOrientation) throws(JPEGError) -> Int {
        func scaled(_ size: Int, _ d: Int) -> Int { (size + d - 1) / d }
        switch downscale {
        case .none:
            return 1
        case let .denominator(d):
            guard [1, 2, 4, 8].contains(d) else { throw .invalidArgument("DCT scale 1/\(d); use 1, 2, 4 or 8") }
            return d
        case let .atLeast(width, height):
            let (needW, needH) = orientation.swapsDimensions ? (height, width) : (width, height)
            for d in [8, 4, 2] where scaled(header.width, d) >= needW && scaled(header.height, d) >= needH {
                return d
            }
            return 1
        case let .shortestSideAtLeast(side):
            for d in [8, 4, 2] where min(scaled(header.width, d), scaled(header.height, d)) >= side {
                return d
            }
            return 1
        }
    }

    /// Adobe-inverted CMYK (stored c, m, y, k; ink = 255 - stored) to RGB,
    /// with Pillow's integer formula so results match it exactly:
    /// `R = k' - round(C * k' / 255)` with k' = stored k and C = 255 - stored c.
    /// Packs 4 bytes per pixel into 3 in place (the write index never passes the read index).
    static func adobeCMYKToRGBInPlace(_ buffer: UnsafeMutableBufferPointer<UInt8>, pixelCount: Int) {
        guard let p = buffer.baseAddress else { return }
        @inline(__always) func mulDiv255(_ a: Int, _ b: Int) -> Int {
            let t = a * b + 128
            return ((t >> 8) + t) >> 8
        }
        for i in 0..<pixelCount {
            let s = p + 4 * i
            let c = 255 - Int(s[0]), m = 255 - Int(s[1]), y = 255 - Int(s[2]), nk = Int(s[3])
            let d = p + 3 * i
            d[0] = UInt8(clamping: nk - mulDiv255(c, nk))
            d[1] = UInt8(clamping: nk - mulDiv255(m, nk))
            d[2] = UInt8(clamping: nk - mulDiv255(y, nk))
        }
    }

    static func error(code: Int32, message: [CChar], limits: JPEGDecodeLimits) -> JPEGError {
        let text = message.withUnsafeBufferPointer { buffer -> String in
            let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
            return String(decoding: bytes, as: UTF8.self)
        }
        switch code {
        case Int32(PCD_JPEG_ERR_TRUNCATED): return .truncated(detail: text.isEmpty ? "premature end of data" : text)
        case Int32(PCD_JPEG_ERR_TOO_MANY_SCANS): return .tooManyScans(limit: limits.maxScans)
        case Int32(PCD_JPEG_ERR_COLORSPACE): return .unsupportedColorSpace(detail: text)
        case Int32(PCD_JPEG_ERR_TOO_MANY_PIXELS): return .corrupt(detail: text)  // Swift checks first; kept for completeness
        case Int32(PCD_JPEG_ERR_BUFFER): return .corrupt(detail: "internal: \(text)")
        case Int32(PCD_JPEG_ERR_ARGUMENT): return .invalidArgument("bad arguments to the JPEG shim")
        case Int32(PCD_JPEG_ERR_TOO_LITTLE_DATA): return .truncated(detail: text)
        case Int32(PCD_JPEG_ERR_MEMORY): return .tooMuchMemory(detail: text, limit: limits.maxMemory)
        default: return .corrupt(detail: text.isEmpty ? "libjpeg error" : text)
        }
    }
}
