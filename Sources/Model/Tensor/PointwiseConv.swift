import CKernels

/// A 1x1 convolution over channels-last feature maps `[B, H, W, C]`, with a bias (BatchNorm folded
/// in), an optional residual and an optional ReLU6.
///
/// Channels-last makes a 1x1 conv a plain matrix product: the batch's B*H*W pixels are the rows of
/// one `[pixels, in] x [out, in]ᵀ` product. It runs as the packed-weight kernel `pck_gemm_packed`
/// (or, in bf16, `pck_gemm_packed_bf16`), with bias, residual and ReLU6 applied in registers, so
/// each output value is stored once. On EfficientNet-Lite0 the fp32 one beat OpenBLAS sgemm
/// followed by an epilogue pass on every conv of the network, the 1152-input ones included
/// (bench/image/efficientnet.sh at batch 16; figures in bench/image/README.md).
public struct PointwiseConv: Sendable {
    /// `[out, in]`, PyTorch's `[out, in, 1, 1]` with the unit dimensions dropped.
    public let weight: Tensor
    /// One value per output channel.
    public let bias: [Float]
    /// Whether ReLU6 follows (expand and head convs); project convs are linear.
    public let relu6: Bool
    /// `weight` packed for the product (panels of 16 output channels), once, at load.
    let packed: Packed

    /// The packed copy of the weight, in the precision of this conv's products.
    enum Packed: Sendable {
        /// For `pck_gemm_packed`.
        case fp32([Float])
        /// For `pck_gemm_packed_bf16`: each pixel's inputs are rounded to bf16 inside the product.
        case bf16([UInt16])
    }

    /// - Parameter weight: `[out, in, 1, 1]` or `[out, in]`; `bias` needs `out` values.
    /// - Parameter precision: the number format of the products (see `Precision`).
    public init(weight: Tensor, bias: [Float], relu6: Bool, precision: Precision = .fp32) throws(InferenceError) {
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
        switch precision {
        case .fp32: packed = .fp32(PackedWeight.pack(self.weight))
        case .bf16: packed = .bf16(PackedWeightBF16.pack(self.weight))
        }
    }

    /// Input channels.
    public var inChannels: Int { weight.shape[1] }
    /// Output channels.
    public var outChannels: Int { weight.shape[0] }

    /// The precision of this conv's products.
    public var precision: Precision {
        if case .bf16 = packed { return .bf16 }
        return .fp32
    }

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
        let rows = x.rowCount, count = rows * outChannels
        let values = [Float](unsafeUninitializedCapacity: count) { y, initialized in
            x.data.withUnsafeBufferPointer { a in
                (residual?.data ?? []).withUnsafeBufferPointer { r in
                    guard let ap = a.baseAddress, let yp = y.baseAddress else { return }
                    // An empty array may still have a base address: only a given residual counts.
                    product(ap, rows: rows, adding: residual == nil ? nil : r.baseAddress, into: yp)
                }
            }
            initialized = count
        }
        return Tensor(uncheckedShape: shape, data: values)
    }

    /// The conv over `rows` contiguous pixels at `x` (plus `residual`, `rows * outChannels` values,
    /// when given), into `y` (room for `rows * outChannels`).
    func product(_ x: UnsafePointer<Float>, rows: Int, adding residual: UnsafePointer<Float>? = nil,
                 into y: UnsafeMutablePointer<Float>) {
        guard rows > 0 else { return }
        bias.withUnsafeBufferPointer { b in
            switch packed {
            case let .fp32(w):
                w.withUnsafeBufferPointer { wb in
                    guard let wp = wb.baseAddress else { return }
                    PackedWeight.product(x, rows: rows, inputs: inChannels, packed: wp, bias: b.baseAddress,
                                         residual: residual, outputs: outChannels, relu6: relu6, into: y)
                }
            case let .bf16(w):
                w.withUnsafeBufferPointer { wb in
                    guard let wp = wb.baseAddress else { return }
                    PackedWeightBF16.product(x, rows: rows, inputs: inChannels, packed: wp, bias: b.baseAddress,
                                             residual: residual, outputs: outChannels, relu6: relu6, into: y)
                }
            }
        }
    }
}
