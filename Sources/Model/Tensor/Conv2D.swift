import CKernels

/// Zero padding around a feature map: rows above and below, columns left and right.
public struct ConvPadding: Sendable, Equatable {
    public var top: Int, bottom: Int, left: Int, right: Int

    public init(top: Int, bottom: Int, left: Int, right: Int) {
        self.top = top
        self.bottom = bottom
        self.left = left
        self.right = right
    }

    /// The output extent of a `kernel`-wide window moved by `stride` over `size` padded values
    /// (`before + size + after`), or nil when the window does not fit once.
    static func outputSize(_ size: Int, before: Int, after: Int, kernel: Int, stride: Int) -> Int? {
        let padded = before + size + after
        guard stride >= 1, kernel >= 1, padded >= kernel else { return nil }
        return (padded - kernel) / stride + 1
    }
}

/// A full (every input channel to every output channel) k x k convolution over channels-last
/// feature maps `[B, H, W, C]`, with bias and optional ReLU6: EfficientNet's stem.
///
/// Computed as im2col + a product: each output pixel's k x k x C window is copied into one row of a
/// `[outH * outW, k * k * C]` matrix (zeros where the window hangs over the padding), and one
/// product with the weight (the packed-weight kernel, bias and ReLU6 fused) gives all output
/// channels. The row order (ky, kx, c) copies C contiguous values per tap; the weight is permuted
/// to the same order once, at load.
public struct Conv2D: Sendable {
    /// `[out, k, k, in]`: PyTorch's `[out, in, k, k]` permuted to the im2col row order.
    public let weight: Tensor
    public let bias: [Float]
    public let stride: Int
    public let padding: ConvPadding
    public let relu6: Bool
    /// `weight` as `[out, k * k * in]`, packed for `pck_gemm_packed` once, at load.
    let packedWeight: [Float]

    /// - Parameter weight: PyTorch layout `[out, in, k, k]`; `bias` needs `out` values.
    public init(weight: Tensor, bias: [Float], stride: Int, padding: ConvPadding, relu6: Bool) throws(InferenceError) {
        guard weight.rank == 4, weight.shape[2] == weight.shape[3], stride >= 1 else {
            throw .shapeMismatch(expected: [-1, -1, -1, -1], found: weight.shape, context: "conv weight (square kernel, stride >= 1)")
        }
        let (o, c, k) = (weight.shape[0], weight.shape[1], weight.shape[2])
        guard bias.count == o else { throw .shapeMismatch(expected: [o], found: [bias.count], context: "conv bias") }
        var permuted = [Float](repeating: 0, count: weight.count)
        for oc in 0..<o {
            for ic in 0..<c {
                for ky in 0..<k {
                    for kx in 0..<k {
                        permuted[((oc * k + ky) * k + kx) * c + ic] = weight.data[((oc * c + ic) * k + ky) * k + kx]
                    }
                }
            }
        }
        self.weight = Tensor(uncheckedShape: [o, k, k, c], data: permuted)
        packedWeight = PackedWeight.pack(Tensor(uncheckedShape: [o, k * k * c], data: permuted))
        self.bias = bias
        self.stride = stride
        self.padding = padding
        self.relu6 = relu6
    }

    public var outChannels: Int { weight.shape[0] }
    public var kernelSize: Int { weight.shape[1] }
    public var inChannels: Int { weight.shape[3] }

    /// `[B, H, W, in]` -> `[B, outH, outW, out]`.
    public func callAsFunction(_ x: Tensor) throws(InferenceError) -> Tensor {
        let k = kernelSize, c = inChannels, o = outChannels
        guard x.rank == 4, x.shape[3] == c,
              let outH = ConvPadding.outputSize(x.shape[1], before: padding.top, after: padding.bottom, kernel: k, stride: stride),
              let outW = ConvPadding.outputSize(x.shape[2], before: padding.left, after: padding.right, kernel: k, stride: stride) else {
            throw .shapeMismatch(expected: [-1, -1, -1, c], found: x.shape, context: "conv input (at least one \(k)x\(k) window)")
        }
        let (batch, h, w) = (x.shape[0], x.shape[1], x.shape[2])
        let pixels = outH * outW, row = k * k * c
        guard pixels > 0, o > 0 else { return Tensor(zeros: [batch, outH, outW, o]) }
        // A band of output rows at a time: the columns buffer is reused, and stays in cache for the product.
        let bandRows = max(1, min(outH, Self.bandValues / (outW * row)))
        var columns = [Float](repeating: 0, count: bandRows * outW * row)
        let values = [Float](unsafeUninitializedCapacity: batch * pixels * o) { yb, initialized in
            x.data.withUnsafeBufferPointer { xb in
                packedWeight.withUnsafeBufferPointer { wb in
                    bias.withUnsafeBufferPointer { bb in
                        columns.withUnsafeMutableBufferPointer { cb in
                            guard let xp = xb.baseAddress, let wp = wb.baseAddress, let bp = bb.baseAddress,
                                  let cols = cb.baseAddress, let yp = yb.baseAddress else { return }
                            for b in 0..<batch {
                                for top in Swift.stride(from: 0, to: outH, by: bandRows) {
                                    let rows = min(bandRows, outH - top), m = rows * outW
                                    im2col(image: xp + b * h * w * c, height: h, width: w, channels: c,
                                           outRows: top..<(top + rows), outWidth: outW, into: cols)
                                    PackedWeight.product(cols, rows: m, inputs: row, packed: wp, bias: bp, outputs: o,
                                                         relu6: relu6, into: yp + (b * outH + top) * outW * o)
                                }
                            }
                        }
                    }
                }
            }
            initialized = batch * pixels * o
        }
        return Tensor(uncheckedShape: [batch, outH, outW, o], data: values)
    }

    /// Values of im2col rows per band: 256 KB, which stays in L2 while the product reads it.
    static let bandValues = 64 * 1024

    /// Fills `cols` (`[outRows.count * outWidth, k * k * C]`) with the windows of output rows
    /// `outRows` of one `[H, W, C]` image.
    private func im2col(image: UnsafePointer<Float>, height h: Int, width w: Int, channels c: Int,
                        outRows: Range<Int>, outWidth: Int, into cols: UnsafeMutablePointer<Float>) {
        let k = kernelSize
        var dst = cols
        for oy in outRows {
            for ox in 0..<outWidth {
                let ix0 = ox * stride - padding.left
                let inside = ix0 >= 0 && ix0 + k <= w
                for ky in 0..<k {
                    let iy = oy * stride - padding.top + ky
                    if iy < 0 || iy >= h {
                        dst.update(repeating: 0, count: k * c)
                    } else if inside {
                        // The k taps of a row are k neighbouring pixels: k * C contiguous values, few
                        // enough (9 for RGB) that a plain loop beats a call to memmove.
                        let src = image + (iy * w + ix0) * c
                        for j in 0..<(k * c) { dst[j] = src[j] }
                    } else {
                        for kx in 0..<k {
                            let ix = ix0 + kx
                            if ix >= 0, ix < w {
                                (dst + kx * c).update(from: image + (iy * w + ix) * c, count: c)
                            } else {
                                (dst + kx * c).update(repeating: 0, count: c)
                            }
                        }
                    }
                    dst += k * c
                }
            }
        }
    }
}
