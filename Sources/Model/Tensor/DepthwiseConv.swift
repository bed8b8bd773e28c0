/// A depthwise k x k convolution (each channel filtered on its own, PyTorch's `groups = channels`)
/// over channels-last feature maps `[B, H, W, C]`, with bias and optional ReLU6.
///
/// Channels-last puts the C values of a pixel side by side, so the kernel is SIMD across channels:
/// for each output pixel and each group of 16 channels, one accumulator starts at the bias, gains
/// `weight[tap] * input[pixel under tap]` for every tap inside the image (taps over the padding
/// are skipped, which is the same as multiplying by zero), and is clamped and stored once.
public struct DepthwiseConv: Sendable {
    /// `[k * k, C]`: tap-major, so one tap's weights for consecutive channels are contiguous.
    public let weight: Tensor
    public let bias: [Float]
    public let stride: Int
    public let padding: ConvPadding
    public let relu6: Bool
    public let kernelSize: Int

    /// - Parameter weight: PyTorch layout `[C, 1, k, k]`; `bias` needs C values.
    public init(weight: Tensor, bias: [Float], stride: Int, padding: ConvPadding, relu6: Bool) throws(TensorError) {
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
    public func callAsFunction(_ x: Tensor) throws(TensorError) -> Tensor {
        let k = kernelSize, c = channels
        guard x.rank == 4, x.shape[3] == c,
              let outH = ConvPadding.outputSize(x.shape[1], before: padding.top, after: padding.bottom, kernel: k, stride: stride),
              let outW = ConvPadding.outputSize(x.shape[2], before: padding.left, after: padding.right, kernel: k, stride: stride) else {
            throw .shapeMismatch(expected: [-1, -1, -1, c], found: x.shape, context: "depthwise conv input (at least one \(k)x\(k) window)")
        }
        let (batch, h, w) = (x.shape[0], x.shape[1], x.shape[2])
        var y = Tensor(zeros: [batch, outH, outW, c])
        x.data.withUnsafeBufferPointer { xb in
            weight.data.withUnsafeBufferPointer { wb in
                bias.withUnsafeBufferPointer { bb in
                    y.data.withUnsafeMutableBufferPointer { yb in
                        guard let xp = xb.baseAddress, let wp = wb.baseAddress, let bp = bb.baseAddress,
                              let yp = yb.baseAddress else { return }
                        for b in 0..<batch {
                            for oy in 0..<outH {
                                for ox in 0..<outW {
                                    // The taps whose input lies inside the image.
                                    let iy0 = oy * stride - padding.top, ix0 = ox * stride - padding.left
                                    let taps = Window(rows: max(0, -iy0)..<min(k, h - iy0), columns: max(0, -ix0)..<min(k, w - ix0))
                                    pixel(input: xp + ((b * h + iy0) * w + ix0) * c, rowStride: w * c,
                                          taps: taps, weight: wp, bias: bp, output: yp + ((b * outH + oy) * outW + ox) * c)
                                }
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    /// The taps of a window that fall inside the image.
    struct Window {
        let rows: Range<Int>
        let columns: Range<Int>
    }

    /// One output pixel, all channels. `input` points at the window's top-left tap (which may lie
    /// in the padding: only taps in `taps` are read).
    @inline(__always)
    private func pixel(input: UnsafePointer<Float>, rowStride: Int, taps: Window, weight: UnsafePointer<Float>,
                       bias: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        typealias V = SIMD16<Float>
        let c = channels, k = kernelSize
        let low = V(repeating: 0), high = V(repeating: 6)
        var ch = 0
        while ch + V.scalarCount <= c {
            var acc = load(bias + ch, as: V.self)
            for ky in taps.rows {
                for kx in taps.columns {
                    let tap = ky * k + kx
                    acc += load(weight + tap * c + ch, as: V.self) * load(input + ky * rowStride + kx * c + ch, as: V.self)
                }
            }
            if relu6 { acc = acc.clamped(lowerBound: low, upperBound: high) }
            UnsafeMutableRawPointer(output + ch).storeBytes(of: acc, as: V.self)
            ch += V.scalarCount
        }
        // Channels past the last full group of 16.
        while ch < c {
            var acc = bias[ch]
            for ky in taps.rows {
                for kx in taps.columns { acc += weight[(ky * k + kx) * c + ch] * input[ky * rowStride + kx * c + ch] }
            }
            output[ch] = relu6 ? min(max(acc, 0), 6) : acc
            ch += 1
        }
    }

    @inline(__always)
    private func load<V: SIMD>(_ p: UnsafePointer<Float>, as: V.Type) -> V where V.Scalar == Float {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }
}
