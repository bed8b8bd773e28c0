/// Inference-time BatchNorm, `y = (x - mean) / sqrt(var + eps) * gamma + beta`, as a per-channel
/// affine map `y = x * scale + shift` that is folded into the conv before it.
public struct BatchNorm: Sendable {
    /// `gamma / sqrt(var + eps)`, one per channel.
    public let scale: [Float]
    /// `beta - mean * scale`, one per channel.
    public let shift: [Float]

    /// The affine map of PyTorch's `weight` (gamma), `bias` (beta), `running_mean` and `running_var`.
    /// The four arrays must have equal length; the arithmetic is done in Double.
    public init(gamma: [Float], beta: [Float], mean: [Float], variance: [Float], eps: Double) throws(InferenceError) {
        let n = gamma.count
        guard beta.count == n, mean.count == n, variance.count == n else {
            throw .shapeMismatch(expected: [n], found: [beta.count, mean.count, variance.count], context: "BatchNorm parameters")
        }
        var scale = [Float](repeating: 0, count: n), shift = [Float](repeating: 0, count: n)
        for c in 0..<n {
            let s = Double(gamma[c]) / (Double(variance[c]) + eps).squareRoot()
            scale[c] = Float(s)
            shift[c] = Float(Double(beta[c]) - Double(mean[c]) * s)
        }
        self.scale = scale
        self.shift = shift
    }

    /// The number of channels.
    public var channels: Int { scale.count }

    /// Folds the norm into a conv without bias: `weight` is `[out, ...]` with `out == channels`;
    /// each output channel's weights are multiplied by its scale, and the shift becomes the bias.
    public func fold(into weight: Tensor) throws(InferenceError) -> (weight: Tensor, bias: [Float]) {
        guard weight.rank >= 1, weight.shape[0] == channels else {
            throw .shapeMismatch(expected: [channels], found: weight.shape, context: "BatchNorm fold (output channels)")
        }
        var folded = weight
        let perChannel = channels == 0 ? 0 : weight.count / channels
        folded.data.withUnsafeMutableBufferPointer { w in
            for o in 0..<channels {
                for i in (o * perChannel)..<((o + 1) * perChannel) { w[i] *= scale[o] }
            }
        }
        return (folded, shift)
    }
}
