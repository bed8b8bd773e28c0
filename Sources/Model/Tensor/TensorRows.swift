/// Views and copies of a tensor's leading dimension shared by the architectures: rows of a
/// matrix view, images of a batch, batches stacked back together.
extension Tensor {
    /// The tensor seen as `[count / width, width]`.
    func reshapedRows(_ width: Int) -> Tensor {
        Tensor(uncheckedShape: [width == 0 ? 0 : count / width, width], data: data)
    }

    /// Images `range` of a `[B, ...]` tensor.
    func images(_ range: Range<Int>) -> Tensor {
        let per = shape.first.map { $0 == 0 ? 0 : count / $0 } ?? 0
        return Tensor(uncheckedShape: [range.count] + shape.dropFirst(), data: Array(data[(range.lowerBound * per)..<(range.upperBound * per)]))
    }

    /// `[B, ...]` tensors of equal trailing shape, one after the other along the first dimension.
    init(stacking parts: [Tensor]) {
        guard let first = parts.first else { self.init(zeros: [0]); return }
        if parts.count == 1 { self = first; return }
        self.init(uncheckedShape: [parts.reduce(0) { $0 + $1.shape[0] }] + first.shape.dropFirst(),
                  data: parts.flatMap(\.data))
    }
}
