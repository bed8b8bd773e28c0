import COpenBLAS

/// A fully connected layer `y = x · Wᵀ + b` with the weight in PyTorch's `[out, in]` layout.
///
/// The weight is used as stored: `cblas_sgemm` reads it transposed (`CblasTrans`), so loading a
/// checkpoint makes no transposed copy.
public struct Linear: Sendable {
    /// The weight, shape `[outFeatures, inFeatures]`.
    public let weight: Tensor
    /// The bias, `outFeatures` values, or `nil` for a layer without bias.
    public let bias: [Float]?

    /// Creates a layer; `weight` must be rank 2 and `bias`, when given, must have one value per output.
    public init(weight: Tensor, bias: [Float]?) throws(TensorError) {
        guard weight.rank == 2 else {
            throw .shapeMismatch(expected: [-1, -1], found: weight.shape, context: "Linear weight")
        }
        if let bias, bias.count != weight.shape[0] {
            throw .shapeMismatch(expected: [weight.shape[0]], found: [bias.count], context: "Linear bias")
        }
        self.weight = weight
        self.bias = bias
    }

    /// Input width.
    public var inFeatures: Int { weight.shape[1] }
    /// Output width.
    public var outFeatures: Int { weight.shape[0] }

    /// Applies the layer to every row of `x` (`[..., inFeatures]` -> `[..., outFeatures]`).
    ///
    /// All rows go through one sgemm call: a batch of B posts of L tokens is one product of B*L rows.
    public func callAsFunction(_ x: Tensor) throws(TensorError) -> Tensor {
        guard x.lastDimension == inFeatures else {
            throw .shapeMismatch(expected: [-1, inFeatures], found: x.shape, context: "Linear input")
        }
        let m = x.rowCount, n = outFeatures, k = inFeatures
        var outShape = x.shape
        outShape[outShape.count - 1] = n
        if m == 0 { return Tensor(uncheckedShape: outShape, data: []) }
        // One pass over the output before sgemm: the bias rows (then beta = 1 folds the bias add
        // into the product), or zeros without bias. Starting from `Tensor(zeros:)` would add a
        // second pass over an output that is megabytes at batch 32.
        let bias = self.bias
        let values = [Float](unsafeUninitializedCapacity: m * n) { buffer, initialized in
            if let bias, let o = buffer.baseAddress {
                bias.withUnsafeBufferPointer { b in
                    guard let bp = b.baseAddress else { return }
                    for row in 0..<m { (o + row * n).initialize(from: bp, count: n) }
                }
            } else {
                buffer.initialize(repeating: 0)
            }
            initialized = m * n
        }
        var y = Tensor(uncheckedShape: outShape, data: values)
        let beta: Float = bias == nil ? 0 : 1
        x.data.withUnsafeBufferPointer { a in
            weight.data.withUnsafeBufferPointer { w in
                y.data.withUnsafeMutableBufferPointer { c in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                                Int32(m), Int32(n), Int32(k),
                                1, a.baseAddress, Int32(k),
                                w.baseAddress, Int32(k),
                                beta, c.baseAddress, Int32(n))
                }
            }
        }
        return y
    }
}

/// OpenBLAS's thread pool size. It is process-wide, so callers set it once at start-up.
public enum BLASThreads {
    /// Sets the number of threads OpenBLAS uses for each product.
    public static func set(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    /// The number of threads OpenBLAS uses now.
    public static var current: Int { Int(openblas_get_num_threads()) }
}
