import CKernels

/// A depthwise k x k convolution (each channel filtered on its own, PyTorch's `groups = channels`)
/// over channels-last feature maps `[B, H, W, C]`, with bias and optional ReLU6.
///
/// Channels-last puts the C values of a pixel side by side, so the kernel is SIMD across channels.
/// Output rows are computed one at a time from the k input rows under them, read in place; rows
/// above or below the image point at a row of zeros, and the row kernel (`pck_depthwise_row`, in C
/// with an AVX2 + FMA body) skips the taps left or right of the row. An earlier version copied each
/// input row into a zero-sided ring so that every window was whole: the copies cost more than the
/// edge cases (bench/image/efficientnet.sh).
public struct DepthwiseConv: Sendable {
    /// `[k * k, C]`: tap-major, so one tap's weights for consecutive channels are contiguous.
    public let weight: Tensor
    public let bias: [Float]
    public let stride: Int
    public let padding: ConvPadding
    public let relu6: Bool
    public let kernelSize: Int

    /// - Parameter weight: PyTorch layout `[C, 1, k, k]`; `bias` needs C values.
    public init(weight: Tensor, bias: [Float], stride: Int, padding: ConvPadding, relu6: Bool) throws(InferenceError) {
        guard weight.rank == 4, weight.shape[1] == 1, weight.shape[2] == weight.shape[3], stride >= 1 else {
            throw .shapeMismatch(expected: [-1, 1, -1, -1], found: weight.shape, context: "depthwise conv weight (square kernel, stride >= 1)")
        }
        let (c, k) = (weight.shape[0], weight.shape[2])
        guard bias.count == c else { throw .shapeMismatch(expected: [c], found: [bias.count], context: "depthwise conv bias") }
        var tapMajor = [Float](repeating: 0, count: weight.count)
        for channel in 0..<c {
            for tap in 0..<(k * k) { tapMajor[tap * c + channel] = weight.data[channel * k * k + tap] }
        }
        self.weight = Tensor(uncheckedShape: [k * k, c], data: tapMajor)
        self.bias = bias
        self.stride = stride
        self.padding = padding
        self.relu6 = relu6
        self.kernelSize = k
    }

    public var channels: Int { weight.shape[1] }

    /// `[B, H, W, C]` -> `[B, outH, outW, C]`.
    public func callAsFunction(_ x: Tensor) throws(InferenceError) -> Tensor {
        let k = kernelSize, c = channels
        guard x.rank == 4, x.shape[3] == c,
              let outH = ConvPadding.outputSize(x.shape[1], before: padding.top, after: padding.bottom, kernel: k, stride: stride),
              let outW = ConvPadding.outputSize(x.shape[2], before: padding.left, after: padding.right, kernel: k, stride: stride) else {
            throw .shapeMismatch(expected: [-1, -1, -1, c], found: x.shape, context: "depthwise conv input (at least one \(k)x\(k) window)")
        }
        let (batch, h, w) = (x.shape[0], x.shape[1], x.shape[2])
        let count = batch * outH * outW * c
        let values = [Float](unsafeUninitializedCapacity: count) { yb, initialized in
            x.data.withUnsafeBufferPointer { xb in
                weight.data.withUnsafeBufferPointer { wb in
                    bias.withUnsafeBufferPointer { bb in
                        guard let xp = xb.baseAddress, let wp = wb.baseAddress, let bp = bb.baseAddress,
                              let yp = yb.baseAddress else { return }
                        for b in 0..<batch {
                            image(xp + b * h * w * c, height: h, width: w, weight: wp, bias: bp,
                                  output: yp + b * outH * outW * c, outHeight: outH, outWidth: outW)
                        }
                    }
                }
            }
            initialized = count
        }
        return Tensor(uncheckedShape: [batch, outH, outW, c], data: values)
    }

    /// One `[h, w, C]` image into `[outHeight, outWidth, C]` at `output`, row by row.
    private func image(_ input: UnsafePointer<Float>, height h: Int, width w: Int, weight: UnsafePointer<Float>,
                       bias: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, outHeight: Int, outWidth: Int) {
        let k = kernelSize, c = channels
        let zeros = UnsafeMutablePointer<Float>.allocate(capacity: w * c)
        zeros.initialize(repeating: 0, count: w * c)
        let rows = UnsafeMutablePointer<UnsafePointer<Float>?>.allocate(capacity: k)
        defer {
            zeros.deallocate()
            rows.deallocate()
        }
        for oy in 0..<outHeight {
            let top = oy * stride - padding.top
            for ky in 0..<k {
                let iy = top + ky
                rows[ky] = iy >= 0 && iy < h ? input + iy * w * c : UnsafePointer(zeros)
            }
            pck_depthwise_row(rows, k, weight, bias, c, w, padding.left, stride, outWidth, relu6 ? 1 : 0,
                              output + oy * outWidth * c)
        }
    }
}
