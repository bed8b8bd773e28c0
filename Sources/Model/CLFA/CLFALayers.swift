/// The building blocks of the CLFA head, each applied to all rows of a padded batch at once.

/// The paper's mapping net: `Linear -> ReLU -> Linear`, per token (`mlp_text`, `mlp_image`).
struct CLFAMappingNet: Sendable {
    let fc1: Linear
    let fc2: Linear

    /// `[..., inFeatures]` -> `[..., outFeatures]`.
    func callAsFunction(_ x: Tensor) throws(InferenceError) -> Tensor {
        var hidden = try fc1(x)
        Activation.relu.apply(&hidden)
        return try fc2(hidden)
    }
}

/// One attention sub-layer (`textSelfAttn` or `imageCrossAttn`): the authors' `bertCoAttn`
/// multi-head attention, then `LN(dense(context) + query states)` (post-LN).
struct CLFAAttentionSubLayer: Sendable {
    let query: Linear
    /// Key and value stacked into one `[2A, h]` product, so the keys' states are read once.
    let keyValue: Linear
    let output: Linear
    let norm: LayerNorm
    let heads: Int

    /// - Parameters:
    ///   - states: `[B*Lq, h]` query-side states (the text).
    ///   - keys: `[B*Lk, h]` key/value-side states (the text again, or the image tokens).
    ///   - keyMask: `[B, Lk]` additive key mask.
    /// - Returns: `[B*Lq, h]`.
    func callAsFunction(_ states: Tensor, attendingTo keys: Tensor, batch: Int, queryLength: Int,
                        keyLength: Int, keyMask: Tensor) throws(InferenceError) -> Tensor {
        let context = try MultiHeadAttention.crossAttention(
            query: try query(states), keyValue: try keyValue(keys), batch: batch,
            queryLength: queryLength, keyLength: keyLength, heads: heads, additiveMask: keyMask)
        var out = try output(context)
        try norm.apply(to: &out, adding: states)
        return out
    }
}

/// A layer's feed-forward block: `LN(output(gelu(intermediate(x))) + x)`.
struct CLFAFeedForward: Sendable {
    let intermediate: Linear
    let output: Linear
    let norm: LayerNorm

    func callAsFunction(_ x: Tensor) throws(InferenceError) -> Tensor {
        var hidden = try intermediate(x)
        Activation.gelu.apply(&hidden)
        var out = try output(hidden)
        try norm.apply(to: &out, adding: x)
        return out
    }
}

/// One `attention_net.layer.{i}`: each sub-layer is there when the checkpoint has its weights.
struct CLFALayer: Sendable {
    let textSelfAttention: CLFAAttentionSubLayer?
    let imageCrossAttention: CLFAAttentionSubLayer?
    let feedForward: CLFAFeedForward?
}
