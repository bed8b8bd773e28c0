/// A depthwise k x k convolution (each channel filtered on its own, PyTorch's `groups = channels`)
/// over channels-last feature maps `[B, H, W, C]`, with bias and optional ReLU6.
///
/// Channels-last puts the C values of a pixel side by side, so the kernel is SIMD across channels.
/// Output rows are computed one at a time from the k input rows under them. Each input row is
/// copied once into a ring of k rows that have zeros on both sides (the left and right padding),
/// and rows above or below the image point at a row of zeros: every window is then whole, and the
/// inner loop has no edge cases. It computes four neighbouring output pixels at once, so each
/// tap's weights are loaded once for four multiply-adds (loads, not arithmetic, bound this kernel).
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

    /// One `[h, w, C]` image into `[outHeight, outWidth, C]` at `output`, row by row through the ring.
    private func image(_ input: UnsafePointer<Float>, height h: Int, width w: Int, weight: UnsafePointer<Float>,
                       bias: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, outHeight: Int, outWidth: Int) {
        let k = kernelSize, c = channels
        let paddedRow = (padding.left + w + padding.right) * c
        // k ring slots, then the row of zeros; the sides of every slot stay zero.
        let slots = UnsafeMutablePointer<Float>.allocate(capacity: (k + 1) * paddedRow)
        slots.initialize(repeating: 0, count: (k + 1) * paddedRow)
        let rows = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: k)
        defer {
            slots.deallocate()
            rows.deallocate()
        }
        let zeros = UnsafePointer(slots + k * paddedRow)
        let inputs = RowInputs(rows: rows, weight: weight, bias: bias)
        var next = 0  // the next input row to copy into the ring
        for oy in 0..<outHeight {
            let top = oy * stride - padding.top
            next = max(next, top)
            while next < min(top + k, h) {
                (slots + (next % k) * paddedRow + padding.left * c).update(from: input + next * w * c, count: w * c)
                next += 1
            }
            for ky in 0..<k {
                let iy = top + ky
                rows[ky] = iy >= 0 && iy < h ? UnsafePointer(slots + (iy % k) * paddedRow) : zeros
            }
            outputRow(inputs, width: outWidth, output: output + oy * outWidth * c)
        }
    }

    typealias V = SIMD8<Float>

    /// What the row kernels read: the k padded input rows under the output row, weights and bias.
    private struct RowInputs {
        let rows: UnsafePointer<UnsafePointer<Float>>
        let weight: UnsafePointer<Float>
        let bias: UnsafePointer<Float>
    }

    /// One output row from the k padded input rows under it, four pixels at a time. A row whose
    /// width is not a multiple of four ends with a group that overlaps the one before (7 = 0...3,
    /// 3...6): recomputing a pixel costs less than a one-pixel loop, whose single accumulator
    /// chain waits on each add.
    private func outputRow(_ inputs: RowInputs, width: Int, output: UnsafeMutablePointer<Float>) {
        let c = channels
        guard width >= 4 else {
            for ox in 0..<width { onePixel(inputs, column: ox * stride, output: output + ox * c) }
            return
        }
        var ox = 0
        while ox < width {
            let first = min(ox, width - 4)
            fourPixels(inputs, column: first * stride, output: output + first * c)
            ox = first + 4
        }
    }

    /// The output pixels at padded columns `column`, `column + stride`, ... (four of them). Four
    /// 8-lane accumulators and their operands fit the 16 SSE registers.
    @inline(__always)
    private func fourPixels(_ inputs: RowInputs, column: Int, output: UnsafeMutablePointer<Float>) {
        let c = channels, k = kernelSize, step = stride * c, step2 = 2 * step, step3 = 3 * step
        var ch = 0
        while ch + V.scalarCount <= c {
            var acc0 = load(inputs.bias + ch), acc1 = acc0, acc2 = acc0, acc3 = acc0
            for ky in 0..<k {
                // Pointers stepped by C per tap: no index arithmetic in the inner loop.
                var tap = inputs.rows[ky] + column * c + ch
                var w = inputs.weight + ky * k * c + ch
                for _ in 0..<k {
                    let wv = load(w)
                    acc0 += wv * load(tap)
                    acc1 += wv * load(tap + step)
                    acc2 += wv * load(tap + step2)
                    acc3 += wv * load(tap + step3)
                    tap += c
                    w += c
                }
            }
            store(acc0, output + ch)
            store(acc1, output + c + ch)
            store(acc2, output + 2 * c + ch)
            store(acc3, output + 3 * c + ch)
            ch += V.scalarCount
        }
        for p in 0..<4 { scalarChannels(ch..<c, inputs, column: column + p * stride, output: output + p * c) }
    }

    /// One output pixel at padded column `column` (for rows narrower than four).
    private func onePixel(_ inputs: RowInputs, column: Int, output: UnsafeMutablePointer<Float>) {
        let c = channels, k = kernelSize
        var ch = 0
        while ch + V.scalarCount <= c {
            var acc = load(inputs.bias + ch)
            for ky in 0..<k {
                let row = inputs.rows[ky] + column * c + ch
                for kx in 0..<k { acc += load(inputs.weight + (ky * k + kx) * c + ch) * load(row + kx * c) }
            }
            store(acc, output + ch)
            ch += V.scalarCount
        }
        scalarChannels(ch..<c, inputs, column: column, output: output)
    }

    /// Channels `range` of one output pixel, one at a time (the tail past the last group of 8).
    private func scalarChannels(_ range: Range<Int>, _ inputs: RowInputs, column: Int, output: UnsafeMutablePointer<Float>) {
        let c = channels, k = kernelSize
        for ch in range {
            var acc = inputs.bias[ch]
            for ky in 0..<k {
                for kx in 0..<k { acc += inputs.weight[(ky * k + kx) * c + ch] * inputs.rows[ky][(column + kx) * c + ch] }
            }
            output[ch] = relu6 ? min(max(acc, 0), 6) : acc
        }
    }

    @inline(__always)
    private func load(_ p: UnsafePointer<Float>) -> V {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }

    /// Stores `v`, clamped to [0, 6] for ReLU6 (masked replaces: `clamped(lowerBound:upperBound:)`
    /// runs lane by lane).
    @inline(__always)
    private func store(_ v: V, _ p: UnsafeMutablePointer<Float>) {
        var v = v
        if relu6 {
            let low = V(repeating: 0), high = V(repeating: 6)
            v = v.replacing(with: low, where: v .< low).replacing(with: high, where: v .> high)
        }
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
    }
}
