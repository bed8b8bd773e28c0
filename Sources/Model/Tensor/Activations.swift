import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Element-wise activation functions, applied in place.
public enum Activation: String, Sendable, Codable {
    /// `x · Φ(x) = x/2 · (1 + erf(x/√2))`, the exact GELU of BERT and ViT (`"gelu"` in HF configs).
    case gelu
    /// `x · sigmoid(1.702 x)`, CLIP's approximation (`"quick_gelu"`).
    case quickGELU = "quick_gelu"
    /// `max(0, x)`.
    case relu
    /// `min(max(0, x), 6)`, EfficientNet-Lite's activation.
    case relu6

    /// `x[row] = act(x[row] + bias)` for every row: a linear layer's bias (left out of its product)
    /// and its activation in one pass, with rows split into `threads` slices.
    public func apply(_ x: inout Tensor, bias: [Float], threads: Int = 1) throws(InferenceError) {
        let width = x.lastDimension, rows = x.rowCount
        guard bias.count == width else {
            throw .shapeMismatch(expected: [width], found: [bias.count], context: "activation bias")
        }
        x.data.withUnsafeMutableBufferPointer { buffer in
            bias.withUnsafeBufferPointer { b in
                guard let p0 = buffer.baseAddress, let bp = b.baseAddress else { return }
                Parallel.forEachSlice(count: rows, threads: threads) { slice in
                    let p = p0 + slice.lowerBound * width
                    if self == .gelu { return pck_bias_gelu(p, slice.count, width, bp) }
                    for row in 0..<slice.count { Vec.add(p + row * width, bp, count: width) }
                    self.apply(p, count: slice.count * width)
                }
            }
        }
    }

    /// Applies the activation to every value of `x`, split into `threads` slices (`Parallel`).
    public func apply(_ x: inout Tensor, threads: Int = 1) {
        let n = x.count
        x.data.withUnsafeMutableBufferPointer { buffer in
            guard let p0 = buffer.baseAddress else { return }
            Parallel.forEachSlice(count: n, threads: threads, granularity: 64) { range in
                self.apply(p0 + range.lowerBound, count: range.count)
            }
        }
    }

    private func apply(_ p: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .gelu: Self.gelu(p, count: count)
        case .quickGELU: Self.quickGELU(p, count: count)
        case .relu: Self.clamp(p, count: count, low: 0, high: .infinity)
        case .relu6: Self.clamp(p, count: count, low: 0, high: 6)
        }
    }

    static func gelu(_ p: UnsafeMutablePointer<Float>, count: Int) {
        // The C kernel (AVX2 + FMA where the CPU has it): the scalar Swift loop did not vectorise
        // and cost a tenth of a MiniLM forward pass.
        pck_gelu(p, count)
    }

    static func quickGELU(_ p: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            let v = p[i]
            p[i] = v / (1 + expf(-1.702 * v))
        }
    }

    static func clamp(_ p: UnsafeMutablePointer<Float>, count: Int, low: Float, high: Float) {
        let lo = SIMD8<Float>(repeating: low), hi = SIMD8<Float>(repeating: high)
        var i = 0
        while i + 8 <= count {
            let v = Vec.load(p + i)
            Vec.store(v.replacing(with: lo, where: v .< lo).replacing(with: hi, where: v .> hi), p + i)
            i += 8
        }
        while i < count { p[i] = min(max(p[i], low), high); i += 1 }
    }
}

/// Row-wise softmax with an additive mask.
public enum Softmax {
    /// Replaces each row `s` of `rows × width` values at `p` with `softmax(s + mask)`.
    ///
    /// `mask` holds `width` additive values (0 for a visible key, a large negative number for a
    /// hidden one), shared by every row. Subtracting the row maximum keeps `exp` finite.
    static func rows(_ p: UnsafeMutablePointer<Float>, rows: Int, width: Int, mask: UnsafePointer<Float>?) {
        guard width > 0, rows > 0 else { return }
        pck_softmax_rows(p, rows, width, mask)
    }

    /// Softmax over the last dimension of `x`, without a mask.
    public static func apply(_ x: inout Tensor) {
        let width = x.lastDimension, n = x.rowCount
        x.data.withUnsafeMutableBufferPointer { b in
            guard let p = b.baseAddress else { return }
            rows(p, rows: n, width: width, mask: nil)
        }
    }
}

extension Activation {
    /// Maps a Hugging Face `hidden_act` name; `nil` for ones this engine does not implement.
    public init?(huggingFaceName name: String) {
        switch name {
        case "gelu": self = .gelu
        case "quick_gelu": self = .quickGELU
        case "relu": self = .relu
        case "relu6": self = .relu6
        default: return nil
        }
    }
}
