/// A dense, contiguous, row-major tensor of `Float` values with a shape.
///
/// Value semantics come from the `[Float]` storage (copy on write), so tensors can be passed
/// around freely; kernels write through `withUnsafeMutableBufferPointer` to avoid per-element
/// bounds checks and allocation.
public struct Tensor: Sendable, Equatable {
    /// The extent of each dimension, outermost first.
    public private(set) var shape: [Int]
    /// The values in row-major order; `data.count == shape.reduce(1, *)`.
    public var data: [Float]

    /// A tensor of zeros with the given shape.
    public init(zeros shape: [Int]) {
        self.shape = shape
        self.data = [Float](repeating: 0, count: shape.reduce(1, *))
    }

    /// A tensor that takes ownership of `data`, which must hold exactly `shape.reduce(1, *)` values.
    public init(shape: [Int], data: [Float]) throws(InferenceError) {
        let count = shape.reduce(1, *)
        guard shape.allSatisfy({ $0 >= 0 }), count == data.count else {
            throw .shapeMismatch(expected: shape, found: [data.count], context: "Tensor(shape:data:)")
        }
        self.shape = shape
        self.data = data
    }

    /// For callers that have already checked `data.count == shape.reduce(1, *)`.
    init(uncheckedShape shape: [Int], data: [Float]) {
        self.shape = shape
        self.data = data
    }

    /// The number of values.
    public var count: Int { data.count }

    /// The number of dimensions.
    public var rank: Int { shape.count }

    /// The size of the last dimension (1 for a scalar), i.e. the length of one row.
    public var lastDimension: Int { shape.last ?? 1 }

    /// The number of rows when the tensor is seen as a matrix [count / lastDimension, lastDimension].
    public var rowCount: Int { lastDimension == 0 ? 0 : count / lastDimension }

    /// The same values with another shape of equal element count.
    public func reshaped(_ newShape: [Int]) throws(InferenceError) -> Tensor {
        guard newShape.reduce(1, *) == count else {
            throw .shapeMismatch(expected: newShape, found: shape, context: "reshape")
        }
        var copy = self
        copy.shape = newShape
        return copy
    }

    /// A copy of rows `range` of the tensor seen as a matrix `[rowCount, lastDimension]`
    /// (so for `[B, L, d]`, row `b * L + t` is token t of post b). `range` must lie in `0..<rowCount`.
    public func rows(_ range: Range<Int>) -> Tensor {
        let d = lastDimension
        var out = Tensor(zeros: [range.count, d])
        out.data.replaceSubrange(0..<(range.count * d), with: data[(range.lowerBound * d)..<(range.upperBound * d)])
        return out
    }
}
