/// Whole posts out of (and back into) a padded batch seen as `[B * rowsPerPost, d]`: post b owns
/// rows `b * rowsPerPost ..< (b + 1) * rowsPerPost`. Lets a step run on a subset of the posts
/// (e.g. only those with an image) as one smaller batch.
extension Tensor {
    /// The rows of `posts` (indices into the batch, in the order given), `[posts.count * rowsPerPost, d]`.
    func postBlocks(_ posts: [Int], rowsPerPost: Int) -> Tensor {
        let d = lastDimension, block = rowsPerPost * d
        var out = Tensor(zeros: [posts.count * rowsPerPost, d])
        for (slot, b) in posts.enumerated() {
            out.data.replaceSubrange((slot * block)..<((slot + 1) * block), with: data[(b * block)..<((b + 1) * block)])
        }
        return out
    }

    /// Writes `part` (as made by `postBlocks(posts, rowsPerPost:)`) back over the rows of `posts`.
    mutating func setPostBlocks(_ posts: [Int], rowsPerPost: Int, from part: Tensor) throws(InferenceError) {
        let d = lastDimension, block = rowsPerPost * d
        guard part.lastDimension == d, part.count == posts.count * block,
              posts.allSatisfy({ $0 >= 0 && ($0 + 1) * block <= count }) else {
            throw .shapeMismatch(expected: [posts.count * rowsPerPost, d], found: part.shape, context: "post blocks")
        }
        for (slot, b) in posts.enumerated() {
            data.replaceSubrange((b * block)..<((b + 1) * block), with: part.data[(slot * block)..<((slot + 1) * block)])
        }
    }
}

extension Tensor {
    /// Copies rows `range` of `source` (same row width) over this tensor's rows from `destination` on.
    mutating func copyRows(from source: Tensor, _ range: Range<Int>, to destination: Int) {
        let d = lastDimension
        data.replaceSubrange((destination * d)..<((destination + range.count) * d),
                             with: source.data[(range.lowerBound * d)..<(range.upperBound * d)])
    }
}
