import CKernels

/// A 1x1 convolution over channels-last feature maps `[B, H, W, C]`, with a bias (BatchNorm folded
/// in), an optional residual and an optional ReLU6.
///
/// Channels-last makes a 1x1 conv a plain matrix product: the batch's B*H*W pixels are the rows of
/// one `[pixels, in] x [out, in]ᵀ` product. It runs as the packed-weight kernel `pck_gemm_packed`,
/// with bias, residual and ReLU6 applied in registers, so each output value is stored once.
/// On EfficientNet-Lite0 this beat OpenBLAS sgemm followed by an epilogue pass on every conv of
/// the network, the 1152-input ones included (bench/image/efficientnet.sh at batch 16; figures in
/// bench/image/README.md).
public struct PointwiseConv: Sendable {
    /// `[out, in]`, PyTorch's `[out, in, 1, 1]` with the unit dimensions dropped.
    public let weight: Tensor
    /// One value per output channel.
    public let bias: [Float]
    /// Whether ReLU6 follows (expand and head convs); project convs are linear.
    public let relu6: Bool
    /// `weight` packed for `pck_gemm_packed` (panels of 16 output channels), once, at load.
    let packedWeight: [Float]

    /// - Parameter weight: `[out, in, 1, 1]` or `[out, in]`; `bias` needs `out` values.
    public init(weight: Tensor, bias: [Float], relu6: Bool) throws(InferenceError) {
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
        packedWeight = PackedWeight.pack(self.weight)
    }

    /// Input channels.
    public var inChannels: Int { weight.shape[1] }
    /// Output channels.
    public var outChannels: Int { weight.shape[0] }

    /// `act(x · Wᵀ + bias + residual)` for every pixel of `x` (`[..., in]` -> `[..., out]`).
    public func callAsFunction(_ x: Tensor, adding residual: Tensor? = nil) throws(InferenceError) -> Tensor {
        guard x.lastDimension == inChannels else {
            throw .shapeMismatch(expected: [-1, inChannels], found: x.shape, context: "1x1 conv input")
        }
        var shape = x.shape
        shape[shape.count - 1] = outChannels
        if let residual, residual.shape != shape {
            throw .shapeMismatch(expected: shape, found: residual.shape, context: "1x1 conv residual")
        }
        let values = PackedWeight.product(x.data, rows: x.rowCount, inputs: inChannels, packed: packedWeight,
                                          bias: bias, residual: residual?.data, outputs: outChannels, relu6: relu6)
        return Tensor(uncheckedShape: shape, data: values)
    }
}
