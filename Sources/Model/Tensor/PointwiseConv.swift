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

    /// - Parameter weight: `[out, in, 1, 1]` or `[out, in]`; `bias` needs `out` values.
    public init(weight: Tensor, bias: [Float], relu6: Bool) throws(TensorError) {
        guard weight.rank == 2 || (weight.rank == 4 && weight.shape[2] == 1 && weight.shape[3] == 1) else {
            throw .shapeMismatch(expected: [-1, -1, 1, 1], found: weight.shape, context: "1x1 conv weight")
        }
        guard bias.count == weight.shape[0] else {
            throw .shapeMismatch(expected: [weight.shape[0]], found: [bias.count], context: "1x1 conv bias")
        }
        self.weight = Tensor(uncheckedShape: [weight.shape[0], weight.shape[1]], data: weight.data)
        self.bias = bias
        self.relu6 = relu6
    }

    /// Input channels.
    public var inChannels: Int { weight.shape[1] }
    /// Output channels.
    public var outChannels: Int { weight.shape[0] }

    /// `act(x · Wᵀ + bias + residual)` for every pixel of `x` (`[..., in]` -> `[..., out]`).
    ///
    /// The output starts as bias (plus residual) and sgemm adds the product with beta = 1, so the
    /// residual costs no pass of its own.
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
        var y = Tensor(uncheckedShape: shape, data: Self.startingValues(rows: m, bias: bias, residual: residual))
        guard m > 0 else { return y }
        x.data.withUnsafeBufferPointer { a in
            weight.data.withUnsafeBufferPointer { w in
                y.data.withUnsafeMutableBufferPointer { c in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k),
                                1, a.baseAddress, Int32(k), w.baseAddress, Int32(k), 1, c.baseAddress, Int32(n))
                    if relu6, let p = c.baseAddress { Activation.clamp(p, count: m * n, low: 0, high: 6) }
                }
            }
        }
        return y
    }

    /// `rows` copies of `bias`, plus `residual` when given: written once, without a zero-fill first.
    static func startingValues(rows: Int, bias: [Float], residual: Tensor?) -> [Float] {
        let n = bias.count
        return [Float](unsafeUninitializedCapacity: rows * n) { buffer, initialized in
            bias.withUnsafeBufferPointer { b in
                guard let o = buffer.baseAddress, let bp = b.baseAddress else { return }
                for row in 0..<rows { (o + row * n).initialize(from: bp, count: n) }
                residual?.data.withUnsafeBufferPointer { r in
                    guard let rp = r.baseAddress else { return }
                    for row in 0..<rows { Vec.add(o + row * n, rp + row * n, count: n) }
                }
            }
            initialized = rows * n
        }
    }
}
