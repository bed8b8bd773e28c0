import Foundation

/// Plain-array vector helpers for the per-post arithmetic of heads (a few thousand values, where
/// clarity matters more than SIMD).
enum SmallVectors {
    static func dot<A: Collection<Float>, B: Collection<Float>>(_ a: A, _ b: B) -> Float {
        zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
    }

    /// `v / |v|`; a zero vector stays zero.
    static func unit(_ v: [Float]) -> [Float] {
        let norm = dot(v, v).squareRoot()
        return norm > 0 ? v.map { $0 / norm } : v
    }

    /// Numerically stable softmax.
    static func softmax(_ v: [Float]) -> [Float] {
        guard let top = v.max() else { return [] }
        let e = v.map { expf($0 - top) }
        let total = e.reduce(0, +)
        return e.map { $0 / total }
    }

    /// Scales every row of `[rows, d]` to unit length.
    static func normaliseRows(_ t: inout Tensor) {
        let d = t.lastDimension
        guard d > 0 else { return }
        for r in 0..<t.rowCount {
            let row = Array(t.data[(r * d)..<((r + 1) * d)])
            t.data.replaceSubrange((r * d)..<((r + 1) * d), with: unit(row))
        }
    }
}
