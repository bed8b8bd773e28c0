/// SIMD row kernels on raw pointers, shared by the layers.
///
/// Each works in chunks of 8 lanes with a scalar tail; pointers need not be aligned.
enum Vec {
    typealias V = SIMD8<Float>
    static let lanes = 8

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> V {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }

    @inline(__always)
    static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
    }

    /// `x[i] += y[i]`.
    static func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int) {
        var i = 0
        while i + lanes <= count {
            store(load(x + i) + load(y + i), x + i)
            i += lanes
        }
        while i < count { x[i] += y[i]; i += 1 }
    }

    /// The sum of `count` values.
    static func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var acc = V(repeating: 0)
        var i = 0
        while i + lanes <= count { acc += load(x + i); i += lanes }
        var s = acc.sum()
        while i < count { s += x[i]; i += 1 }
        return s
    }

    /// `sum((x[i] - mean)^2)`: the two-pass variance avoids the cancellation of `E[x²] - E[x]²`.
    static func sumOfSquaredDeviations(_ x: UnsafePointer<Float>, mean: Float, count: Int) -> Float {
        let m = V(repeating: mean)
        var acc = V(repeating: 0)
        var i = 0
        while i + lanes <= count {
            let d = load(x + i) - m
            acc += d * d
            i += lanes
        }
        var s = acc.sum()
        while i < count { let d = x[i] - mean; s += d * d; i += 1 }
        return s
    }

    /// `x[i] = (x[i] - mean) * inverseStd * gamma[i] + beta[i]`.
    static func normalise(_ x: UnsafeMutablePointer<Float>, mean: Float, inverseStd: Float,
                          gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, count: Int) {
        let m = V(repeating: mean), s = V(repeating: inverseStd)
        var i = 0
        while i + lanes <= count {
            store((load(x + i) - m) * s * load(gamma + i) + load(beta + i), x + i)
            i += lanes
        }
        while i < count { x[i] = (x[i] - mean) * inverseStd * gamma[i] + beta[i]; i += 1 }
    }

    /// `x[i] *= factor`.
    static func scale(_ x: UnsafeMutablePointer<Float>, by factor: Float, count: Int) {
        let f = V(repeating: factor)
        var i = 0
        while i + lanes <= count { store(load(x + i) * f, x + i); i += lanes }
        while i < count { x[i] *= factor; i += 1 }
    }
}
