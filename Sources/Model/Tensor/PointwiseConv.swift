import CKernels
import COpenBLAS

/// A 1x1 convolution over channels-last feature maps `[B, H, W, C]`, with a bias (BatchNorm folded
/// in), an optional residual and an optional ReLU6.
///
/// Channels-last makes a 1x1 conv a plain matrix product: the batch's B*H*W pixels are the rows of
/// one `[pixels, in] x [out, in]ᵀ` sgemm, so a whole batch is one call, as in `Linear`.
public struct PointwiseConv: Sendable {
    /// `[out, in]`, PyTorch's `[out, in, 1, 1]` with the unit dimensions dropped.
    public let weight: Tensor
    /// One value per output channel.
    public let bias: [Float]
    /// Whether ReLU6 follows (expand and head convs); project convs are linear.
    public let relu6: Bool
    /// The weight input-major, `[in, out]`, for convs with at most `directMaxInputs` input
    /// channels, which run as one C kernel (`pck_pointwise_conv`) instead of sgemm + epilogue.
    let weightInMajor: [Float]?

    /// Up to this many input channels, the direct kernel beats sgemm: the product is mostly the
    /// writing of an output six times wider than its input, which the kernel does once, finished.
    /// Measured on EfficientNet-Lite0 at batch 16 (bench/image/efficientnet.sh): a limit of 64 gave
    /// 0.76x ONNX Runtime, 128 gave 0.80x, 200 gave 0.57x (past ~128 inputs the weight no longer
    /// stays in cache across row pairs, and narrow outputs leave too few accumulators), and the
    /// direct kernel everywhere 0.55x.
    static let directMaxInputs = 128

    /// - Parameter weight: `[out, in, 1, 1]` or `[out, in]`; `bias` needs `out` values.
    public init(weight: Tensor, bias: [Float], relu6: Bool) throws(TensorError) {
        guard weight.rank == 2 || (weight.rank == 4 && weight.shape[2] == 1 && weight.shape[3] == 1) else {
            throw .shapeMismatch(expected: [-1, -1, 1, 1], found: weight.shape, context: "1x1 conv weight")
        }
        guard bias.count == weight.shape[0] else {
            throw .shapeMismatch(expected: [weight.shape[0]], found: [bias.count], context: "1x1 conv bias")
        }
        let (out, inputs) = (weight.shape[0], weight.shape[1])
        self.weight = Tensor(uncheckedShape: [out, inputs], data: weight.data)
        self.bias = bias
        self.relu6 = relu6
        if inputs <= Self.directMaxInputs {
            var transposed = [Float](repeating: 0, count: weight.count)
            for o in 0..<out {
                for i in 0..<inputs { transposed[i * out + o] = weight.data[o * inputs + i] }
            }
            weightInMajor = transposed
        } else {
            weightInMajor = nil
        }
    }

    /// Input channels.
    public var inChannels: Int { weight.shape[1] }
    /// Output channels.
    public var outChannels: Int { weight.shape[0] }

    /// Output values per chunk of rows: 256 KB, so a chunk is still in L2 when the epilogue reads it.
    static let chunkValues = 64 * 1024

    /// `act(x · Wᵀ + bias + residual)` for every pixel of `x` (`[..., in]` -> `[..., out]`).
    ///
    /// Convs with few input channels run as one direct kernel (`weightInMajor`). The others are
    /// done in chunks of rows: sgemm writes a chunk (beta = 0) and `finish` adds bias and residual
    /// and clamps it while it is still in cache. Expand convs have few input channels (16 to 192)
    /// and many outputs, so their cost is mostly moving the output: one trip to memory per chunk
    /// instead of one per pass.
    public func callAsFunction(_ x: Tensor, adding residual: Tensor? = nil) throws(TensorError) -> Tensor {
        guard x.lastDimension == inChannels else {
            throw .shapeMismatch(expected: [-1, inChannels], found: x.shape, context: "1x1 conv input")
        }
        let m = x.rowCount, n = outChannels, k = inChannels
        var shape = x.shape
        shape[shape.count - 1] = n
        if let residual, residual.shape != shape {
            throw .shapeMismatch(expected: shape, found: residual.shape, context: "1x1 conv residual")
        }
        let rowsPerChunk = max(1, Self.chunkValues / max(n, 1))
        let values = [Float](unsafeUninitializedCapacity: m * n) { buffer, initialized in
            x.data.withUnsafeBufferPointer { a in
                weight.data.withUnsafeBufferPointer { w in
                    bias.withUnsafeBufferPointer { b in
                        (residual?.data ?? []).withUnsafeBufferPointer { r in
                            guard let ap = a.baseAddress, let wp = w.baseAddress, let bp = b.baseAddress,
                                  let yp = buffer.baseAddress else { return }
                            // An empty array may still have a base address: only a given residual counts.
                            let rp = residual == nil ? nil : r.baseAddress
                            if let direct = weightInMajor {
                                direct.withUnsafeBufferPointer { d in
                                    pck_pointwise_conv(ap, m, k, d.baseAddress, bp, rp, n, relu6 ? 1 : 0, yp)
                                }
                                return
                            }
                            for start in stride(from: 0, to: m, by: rowsPerChunk) {
                                let rows = min(rowsPerChunk, m - start)
                                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(n), Int32(k),
                                            1, ap + start * k, Int32(k), wp, Int32(k), 0, yp + start * n, Int32(n))
                                Self.finish(yp + start * n, rows: rows, width: n, bias: bp,
                                            residual: rp.map { $0 + start * n }, relu6: relu6)
                            }
                        }
                    }
                }
            }
            initialized = m * n
        }
        return Tensor(uncheckedShape: shape, data: values)
    }

    /// The epilogue of a conv computed without bias: `rows` rows of `width` values at `c` become
    /// `act(c + bias + residual)`, in one pass.
    static func finish(_ c: UnsafeMutablePointer<Float>, rows: Int, width n: Int, bias: UnsafePointer<Float>,
                       residual: UnsafePointer<Float>?, relu6: Bool) {
        typealias V = SIMD8<Float>
        let low = V(repeating: 0), high = V(repeating: 6)
        for row in 0..<rows {
            let out = c + row * n, res = residual.map { $0 + row * n }
            var j = 0
            while j + V.scalarCount <= n {
                var v = Vec.load(out + j) + Vec.load(bias + j)
                if let res { v += Vec.load(res + j) }
                if relu6 { v = v.replacing(with: low, where: v .< low).replacing(with: high, where: v .> high) }
                Vec.store(v, out + j)
                j += V.scalarCount
            }
            while j < n {
                let v = out[j] + bias[j] + (res?[j] ?? 0)
                out[j] = relu6 ? min(max(v, 0), 6) : v
                j += 1
            }
        }
    }
}
