/// The image side of a batch's cross-attention: which posts attend to image tokens, and those
/// tokens after `mlp_image`, padded to one length with a per-post key mask.
struct CLFAImageKeys {
    /// The posts (batch indices, ascending) that run the `imageCrossAttn` sub-layers.
    let posts: [Int]
    /// `[posts.count * length, h]`: post `posts[s]`'s tokens in rows `s * length ..< (s + 1) * length`.
    let states: Tensor
    /// The padded token count (Kmax).
    let length: Int
    /// `[posts.count, length]` additive key mask: 0 for a post's own tokens, -10000 for padding.
    let mask: Tensor

    /// The keys as the `image` stage, `[B, length, h]`, zero for posts that attend to none.
    func stage(batch: Int, width: Int) throws(InferenceError) -> Tensor {
        var all = Tensor(zeros: [batch * length, width])
        try all.setPostBlocks(posts, rowsPerPost: length, from: states)
        return try all.reshaped([batch, length, width])
    }
}

extension CLFAHead {
    /// Maps the image tokens of the posts that have an image (one product over all their rows)
    /// and applies the no-image rule to the rest; `nil` for a text-only head.
    func imageKeys(image: Tensor?, hasImage: [Bool]) throws(InferenceError) -> CLFAImageKeys? {
        guard let mlpImage else { return nil }
        let batch = hasImage.count, width = hiddenWidth, imageWidth = mlpImage.fc1.inFeatures
        let withImage = hasImage.indices.filter { hasImage[$0] }
        var mapped = Tensor(zeros: [0, width])
        var tokens = 0
        if !withImage.isEmpty {
            guard let image, image.rank == 3, image.shape[0] == batch, image.shape[1] > 0, image.shape[2] == imageWidth else {
                throw .shapeMismatch(expected: [batch, -1, imageWidth], found: image?.shape ?? [],
                                     context: "CLFA image states (posts marked hasImage need [B, K, d_i] with K > 0)")
            }
            tokens = image.shape[1]
            mapped = try mlpImage(image.reshapedRows(imageWidth).postBlocks(withImage, rowsPerPost: tokens))
        }
        guard let noImageToken = mappedNoImageToken else {
            // The text-only rule: only the posts with an image attend, each to all of its K tokens.
            return CLFAImageKeys(posts: withImage, states: mapped, length: tokens, mask: Tensor(zeros: [withImage.count, tokens]))
        }
        // The learned-token rule: every post attends, those without an image to the K0 token rows.
        let tokenRows = noImageToken.rowCount
        let length = max(tokens, withImage.count < batch ? tokenRows : 0)
        var states = Tensor(zeros: [batch * length, width])
        var lengths = [Int](repeating: tokenRows, count: batch)
        for (slot, b) in withImage.enumerated() {
            states.copyRows(from: mapped, (slot * tokens)..<((slot + 1) * tokens), to: b * length)
            lengths[b] = tokens
        }
        for b in 0..<batch where !hasImage[b] {
            states.copyRows(from: noImageToken, 0..<tokenRows, to: b * length)
        }
        let mask = MultiHeadAttention.additiveMask(lengths: lengths, paddedLength: length, hiddenValue: Self.maskValue)
        return CLFAImageKeys(posts: Array(0..<batch), states: states, length: length, mask: mask)
    }
}
