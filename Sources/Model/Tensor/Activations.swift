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

    /// Applies the activation to every value of `x`.
    public func apply(_ x: inout Tensor) {
        let n = x.count
        x.data.withUnsafeMutableBufferPointer { buffer in
            guard let p = buffer.baseAddress else { return }
            switch self {
            case .gelu: Self.gelu(p, count: n)
            case .quickGELU: Self.quickGELU(p, count: n)
            case .relu: Self.clamp(p, count: n, low: 0, high: .infinity)
            case .relu6: Self.clamp(p, count: n, low: 0, high: 6)
            }
        }
    }

    static func gelu(_ p: UnsafeMutablePointer<Float>, count: Int) {
        // Single-threaded on purpose: spreading it over threads measured no faster end to end,
        // because OpenBLAS's workers keep spinning on the cores between products.
        for i in 0..<count { p[i] = VecMath.gelu(p[i]) }
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
        guard width > 0 else { return }
        for r in 0..<rows {
            let s = p + r * width
            if let mask { Vec.add(s, mask, count: width) }
            let m = Vec.max(s, count: width)
            for j in 0..<width { s[j] = VecMath.exp(s[j] - m) }
            // Summed apart from the exp loop so that loop has no reduction and vectorises.
            let total = Vec.sum(s, count: width)
            Vec.scale(s, by: 1 / total, count: width)
        }
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
