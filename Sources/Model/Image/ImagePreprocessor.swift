/// Turns an `RGBImage` into an encoder's Float32 input, following an
/// `ImagePreprocessConfig`. A value type without shared mutable state: safe
/// to use from many threads at once.
///
/// The resize is separable: a vertical pass over the source rows, each widened
/// from 8 bits to Float32 once, into a Float32 buffer (sixteen samples at a time
/// over every tap), then a horizontal pass (one SIMD4 multiply-add per tap for
/// R, G, B, four rows sharing each broadcast weight) that also clamps,
/// normalises and writes the output layout. Only the rows and columns that
/// survive the centre crop are computed; since each output pixel depends only
/// on its own coordinate, that equals "resize, then crop".
public struct ImagePreprocessor: Sendable {
    /// The validated config.
    public let config: ImagePreprocessConfig

    /// - Throws: `PreprocessError.invalidConfig` when the config is unusable.
    public init(config: ImagePreprocessConfig) throws(PreprocessError) {
        try config.validate()
        self.config = config
    }

    /// Number of floats one picture fills.
    public var valuesPerImage: Int { config.valuesPerImage }

    /// The resized (pre-crop) size and the crop origin for a picture of this size.
    public func geometry(width: Int, height: Int) -> (resizedWidth: Int, resizedHeight: Int, left: Int, top: Int) {
        switch config.resizeMode {
        case .squash:
            return (config.width, config.height, 0, 0)
        case .shortestSideCenterCrop:
            let side = config.effectiveShortestSide
            // The long side is truncated, as torchvision's Resize(int) does;
            // computed in integers so the reference agrees bit for bit.
            let (rw, rh) = width <= height ? (side, side * height / width) : (side * width / height, side)
            return (rw, rh, (rw - config.width) / 2, (rh - config.height) / 2)
        }
    }

    /// Writes one picture into `output[0 ..< valuesPerImage]` (slice a batch
    /// buffer to fill picture n of a batch in place).
    public func run(_ image: RGBImage, into output: UnsafeMutableBufferPointer<Float>) throws(PreprocessError) {
        let needed = config.valuesPerImage
        guard output.count >= needed, let out = output.baseAddress else {
            throw .outputTooSmall(needed: needed, got: output.count)
        }
        let g = geometry(width: image.width, height: image.height)
        let outW = config.width, outH = config.height
        let cols = ResampleCoefficients(inSize: image.width, outSize: g.resizedWidth, start: g.left, count: outW, filter: config.filter)
        let rows = ResampleCoefficients(inSize: image.height, outSize: g.resizedHeight, start: g.top, count: outH, filter: config.filter)

        // Vertical pass over only the source columns the horizontal pass reads.
        let firstCol = cols.minFirst, endCol = cols.maxEnd
        let spanFloats = (endCol - firstCol) * 3
        // One spare float per row: the horizontal pass loads 4 floats for a
        // 3-float pixel, and the spare keeps the last load in bounds.
        let rowStride = spanFloats + 1
        let tmp = UnsafeMutablePointer<Float>.allocate(capacity: rowStride * outH)
        defer { tmp.deallocate() }

        // The source rows the vertical pass reads, converted to Float once each into a ring of
        // `rows.taps` rows (an output row's taps always fit: the windows only move down).
        let ringRows = max(rows.taps, 1)
        let ring = UnsafeMutablePointer<Float>.allocate(capacity: ringRows * spanFloats)
        defer { ring.deallocate() }
        let tapRows = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: ringRows)
        defer { tapRows.deallocate() }
        image.pixels.withUnsafeBufferPointer { srcBuffer in
            guard let src = srcBuffer.baseAddress else { return }
            let srcRowBytes = image.width * 3
            var converted = 0  // source rows below this one are (or were) in the ring
            rows.weights.withUnsafeBufferPointer { wvBuffer in
                guard let wv = wvBuffer.baseAddress else { return }
                for r in 0..<outH {
                    let first = rows.first[r], taps = rows.counts[r]
                    converted = max(converted, first)
                    while converted < first + taps {
                        Self.widen(src + converted * srcRowBytes + firstCol * 3, length: spanFloats,
                                   into: ring + (converted % ringRows) * spanFloats)
                        converted += 1
                    }
                    for k in 0..<taps { tapRows[k] = UnsafePointer(ring + ((first + k) % ringRows) * spanFloats) }
                    let dst = tmp + r * rowStride
                    dst[spanFloats] = 0
                    Self.verticalRow(tapRows, taps: taps, weights: wv + r * rows.taps, length: spanFloats, dst: dst)
                }
            }
        }

        // Horizontal pass fused with clamp, normalisation and layout, four rows at a time: the
        // rows share each output column's taps, so each weight is broadcast once for all four.
        let scale = config.rescaleFactor
        let output = OutputPixels(
            base: out, width: outW, plane: outW * outH, nchw: config.layout == .nchw,
            a: SIMD4<Float>(scale / config.std[0], scale / config.std[1], scale / config.std[2], 0),
            b: SIMD4<Float>(-config.mean[0] / config.std[0], -config.mean[1] / config.std[1], -config.mean[2] / config.std[2], 0))
        cols.first.withUnsafeBufferPointer { firstBuffer in
            cols.counts.withUnsafeBufferPointer { countBuffer in
                cols.weights.withUnsafeBufferPointer { whBuffer in
                    guard let wh = whBuffer.baseAddress else { return }
                    for r in stride(from: 0, to: outH, by: 4) {
                        let rowCount = min(4, outH - r)
                        // Rows past the last read the last one again and are not written.
                        let o1 = min(1, rowCount - 1) * rowStride, o2 = min(2, rowCount - 1) * rowStride
                        let o3 = min(3, rowCount - 1) * rowStride
                        for j in 0..<outW {
                            var p = tmp + r * rowStride + (firstBuffer[j] - firstCol) * 3
                            let w = wh + j * cols.taps
                            var acc0 = SIMD4<Float>(repeating: 0), acc1 = acc0, acc2 = acc0, acc3 = acc0
                            for k in 0..<countBuffer[j] {
                                let wk = SIMD4<Float>(repeating: w[k])
                                acc0 += UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self) * wk
                                acc1 += UnsafeRawPointer(p + o1).loadUnaligned(as: SIMD4<Float>.self) * wk
                                acc2 += UnsafeRawPointer(p + o2).loadUnaligned(as: SIMD4<Float>.self) * wk
                                acc3 += UnsafeRawPointer(p + o3).loadUnaligned(as: SIMD4<Float>.self) * wk
                                p += 3
                            }
                            output.write(acc0, row: r, column: j)
                            if rowCount > 1 { output.write(acc1, row: r + 1, column: j) }
                            if rowCount > 2 { output.write(acc2, row: r + 2, column: j) }
                            if rowCount > 3 { output.write(acc3, row: r + 3, column: j) }
                        }
                    }
                }
            }
        }
    }

    /// Where the horizontal pass writes: clamps a resampled RGB pixel to 0...255, normalises it
    /// (`v * a + b`) and stores it in the output layout.
    private struct OutputPixels {
        let base: UnsafeMutablePointer<Float>
        let width: Int, plane: Int, nchw: Bool
        let a: SIMD4<Float>, b: SIMD4<Float>

        @inline(__always)
        func write(_ rgb: SIMD4<Float>, row: Int, column: Int) {
            // replace(with:where:) inlines to vector compares and blends; pointwiseMin/Max stay calls.
            var clamped = rgb
            clamped.replace(with: 0, where: clamped .< 0)
            clamped.replace(with: 255, where: clamped .> 255)
            let v = clamped * a + b
            if nchw {
                let o = base + row * width + column
                o[0] = v[0]
                o[plane] = v[1]
                o[2 * plane] = v[2]
            } else {
                let o = base + (row * width + column) * 3
                o[0] = v[0]
                o[1] = v[1]
                o[2] = v[2]
            }
        }
    }

    /// Convenience: one picture into a new array.
    public func callAsFunction(_ image: RGBImage) -> [Float] {
        [Float](unsafeUninitializedCapacity: valuesPerImage) { buffer, count in
            // Cannot fail: the buffer has exactly valuesPerImage floats.
            do { try run(image, into: buffer) } catch { buffer.initialize(repeating: 0) }
            count = valuesPerImage
        }
    }

    /// Decodes a JPEG (with the DCT downscaling the config allows) and
    /// preprocesses it into `output`. Returns the decode details.
    public func decodeAndRun(jpeg bytes: UnsafeRawBufferPointer, decoder: JPEGDecoder,
                             into output: UnsafeMutableBufferPointer<Float>) throws -> DecodedJPEG {
        let decoded = try decoder.decode(bytes, downscale: config.jpegDownscale)
        try run(decoded.image, into: output)
        return decoded
    }

    /// One source row's bytes as Floats (a plain loop the compiler vectorises).
    @inline(__always)
    private static func widen(_ src: UnsafePointer<UInt8>, length: Int, into dst: UnsafeMutablePointer<Float>) {
        for i in 0..<length { dst[i] = Float(src[i]) }
    }

    /// One output row of the vertical pass: dst[i] = sum_k w[k] * rows[k][i].
    @inline(__always)
    private static func verticalRow(_ rows: UnsafePointer<UnsafePointer<Float>>, taps: Int, weights: UnsafePointer<Float>,
                                    length: Int, dst: UnsafeMutablePointer<Float>) {
        // Sixteen samples at a time summed over every tap in registers, then stored once; each
        // source row was widened to Float once, not once per output row that reads it.
        guard taps > 0 else { dst.update(repeating: 0, count: length); return }
        var i = 0
        while i + 16 <= length {
            var acc = SIMD16<Float>(repeating: 0)
            for k in 0..<taps {
                acc += UnsafeRawPointer(rows[k] + i).loadUnaligned(as: SIMD16<Float>.self) * weights[k]
            }
            UnsafeMutableRawPointer(dst + i).storeBytes(of: acc, as: SIMD16<Float>.self)
            i += 16
        }
        while i < length {
            var acc: Float = 0
            for k in 0..<taps { acc += rows[k][i] * weights[k] }
            dst[i] = acc
            i += 1
        }
    }
}

/// Pillow-style resampling weights for one axis, for output indices
/// `start ..< start + count` of a resize from `inSize` to `outSize`.
struct ResampleCoefficients {
    /// Slots per output index in `weights` (unused slots are 0).
    let taps: Int
    /// First input index of each output index.
    let first: [Int]
    /// Number of input indices used by each output index.
    let counts: [Int]
    /// `count * taps` normalised weights.
    let weights: [Float]
    /// Smallest `first` and largest `first + counts`: the input span used.
    let minFirst: Int
    let maxEnd: Int

    init(inSize: Int, outSize: Int, start: Int, count: Int, filter: ImagePreprocessConfig.Filter) {
        let scale = Double(inSize) / Double(outSize)
        // Shrinking widens the kernel by the scale factor (antialiasing).
        let filterScale = max(scale, 1)
        let support = filter.support * filterScale
        let taps = Int(support.rounded(.up)) * 2 + 1
        var first = [Int](repeating: 0, count: count)
        var counts = [Int](repeating: 0, count: count)
        var weights = [Float](repeating: 0, count: count * taps)
        var minFirst = inSize, maxEnd = 0
        var w = [Double](repeating: 0, count: taps)
        for j in 0..<count {
            let center = (Double(start + j) + 0.5) * scale
            // Int(_:) truncates toward zero, like the C cast in Pillow; the
            // max/min make negative and past-the-end values harmless.
            let lo = max(Int(center - support + 0.5), 0)
            let n = min(min(Int(center + support + 0.5), inSize) - lo, taps)
            var total = 0.0
            for k in 0..<max(n, 0) {
                w[k] = filter.weight((Double(lo + k) - center + 0.5) / filterScale)
                total += w[k]
            }
            for k in 0..<max(n, 0) {
                weights[j * taps + k] = Float(total != 0 ? w[k] / total : w[k])
            }
            first[j] = lo
            counts[j] = max(n, 0)
            minFirst = min(minFirst, lo)
            maxEnd = max(maxEnd, lo + max(n, 0))
        }
        self.taps = taps
        self.first = first
        self.counts = counts
        self.weights = weights
        self.minFirst = min(minFirst, maxEnd)
        self.maxEnd = maxEnd
    }
}
