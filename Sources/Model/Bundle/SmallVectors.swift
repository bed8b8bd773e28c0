import Foundation

/// Plain-array vector helpers for the per-post arithmetic of heads: plain loops where a post has a
/// few thousand values, SIMD where it has more (`rowDots`).
enum SmallVectors {
    static func dot<A: Collection<Float>, B: Collection<Float>>(_ a: A, _ b: B) -> Float {
        zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
    }

    /// The dot product of each row of a row-major `[rows, width]` matrix with `v` (`width` values),
    /// eight lanes at a time: the zero-shot head calls it on a thousand rows per post. A matrix of
    /// fewer than `rows * width` values, or a `v` of another width, gives zeros.
    static func rowDots(_ matrix: [Float], rows: Int, width: Int, with v: [Float]) -> [Float] {
        guard width > 0, v.count == width, matrix.count >= rows * width else { return [Float](repeating: 0, count: max(rows, 0)) }
        let lanes = width / 8 * 8
        return matrix.withUnsafeBufferPointer { m in
            v.withUnsafeBufferPointer { x in
                guard let mBase = m.baseAddress, let xBase = x.baseAddress else { return [Float](repeating: 0, count: rows) }
                return (0..<rows).map { r in
                    let row = mBase + r * width
                    var acc = SIMD8<Float>(repeating: 0)
                    var i = 0
                    while i < lanes {
                        acc += UnsafeRawPointer(row + i).loadUnaligned(as: SIMD8<Float>.self)
                            * UnsafeRawPointer(xBase + i).loadUnaligned(as: SIMD8<Float>.self)
                        i += 8
                    }
                    var total = acc.sum()
                    while i < width {
                        total += row[i] * xBase[i]
                        i += 1
                    }
                    return total
                }
            }
        }
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
