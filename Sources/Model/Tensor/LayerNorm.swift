/// Layer normalisation over the last dimension: `(x - mean) / sqrt(var + eps) * gamma + beta`.
///
/// Variance is the biased (population) variance, as in PyTorch's `nn.LayerNorm`.
public struct LayerNorm: Sendable {
    /// Scale, one value per feature.
    public let gamma: [Float]
    /// Shift, one value per feature.
    public let beta: [Float]
    /// Added to the variance before the square root.
    public let eps: Float

    /// Creates a layer norm; `gamma` and `beta` must have the same length.
    public init(gamma: [Float], beta: [Float], eps: Float) throws(InferenceError) {
        guard gamma.count == beta.count else {
            throw .shapeMismatch(expected: [gamma.count], found: [beta.count], context: "LayerNorm beta")
        }
        self.gamma = gamma
        self.beta = beta
        self.eps = eps
    }

    /// Normalises each row of `x`.
    public func callAsFunction(_ x: Tensor) throws(InferenceError) -> Tensor {
        var y = x
        try apply(to: &y, adding: nil)
        return y
    }

    /// `LN(x + bias + residual)` in place in `x`: the post-LN block's "add & norm" in one pass, with
    /// the rows split into `threads` slices (`Parallel`). `bias`, one value per feature, is the
    /// preceding linear layer's when it was left out of the product.
    public func apply(to x: inout Tensor, adding residual: Tensor?, bias: [Float]? = nil, threads: Int = 1) throws(InferenceError) {
        let d = gamma.count
        if let bias, bias.count != d {
            throw .shapeMismatch(expected: [d], found: [bias.count], context: "LayerNorm bias")
        }
        guard x.lastDimension == d else {
            throw .shapeMismatch(expected: [-1, d], found: x.shape, context: "LayerNorm input")
        }
        if let residual, residual.shape != x.shape {
            throw .shapeMismatch(expected: x.shape, found: residual.shape, context: "LayerNorm residual")
        }
        let rows = x.rowCount
        guard rows > 0, d > 0 else { return }
        let eps = self.eps
        x.data.withUnsafeMutableBufferPointer { xb in
            gamma.withUnsafeBufferPointer { g in
                beta.withUnsafeBufferPointer { b in
                    withOptional(residual?.data) { rp in
                    withOptional(bias) { linearBias in
                        guard let xp = xb.baseAddress, let gp = g.baseAddress, let bp = b.baseAddress else { return }
                        Parallel.forEachSlice(count: rows, threads: threads) { slice in
                            for row in slice {
                                let r = xp + row * d
                                if let linearBias { Vec.add(r, linearBias, count: d) }
                                if let rp { Vec.add(r, rp + row * d, count: d) }
                                let mean = Vec.sum(r, count: d) / Float(d)
                                let variance = Vec.sumOfSquaredDeviations(r, mean: mean, count: d) / Float(d)
                                let inv = 1 / (variance + eps).squareRoot()
                                Vec.normalise(r, mean: mean, inverseStd: inv, gamma: gp, beta: bp, count: d)
                            }
                        }
                    }
                    }
                }
            }
        }
    }

    private func withOptional(_ values: [Float]?, _ body: (UnsafePointer<Float>?) -> Void) {
        guard let values else { return body(nil) }
        values.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
