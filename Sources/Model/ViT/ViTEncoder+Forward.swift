extension ViTEncoder {
    /// Encodes a batch for the heads: regions are all 1 + N tokens, pooled is the CLS token.
    public func encode(_ pixels: [Float], batch: Int) throws(InferenceError) -> ImageEncoding {
        let output = try forward(pixels, batch: batch)
        return ImageEncoding(regions: output.tokens, pooled: output.pooled, logits: nil)
    }

    /// Runs the encoder on `batch` images stored back to back, each `[C, H, W]` (NCHW, normalised).
    ///
    /// - Parameter keepStages: also return the patch projections, the embedding output and every
    ///   layer's output (for golden tests).
    public func forward(_ pixels: [Float], batch: Int, keepStages: Bool = false) throws(InferenceError) -> ViTOutput {
        let perImage = config.numChannels * config.imageSize.height * config.imageSize.width
        guard batch >= 0, pixels.count == batch * perImage else {
            throw .shapeMismatch(expected: [batch, config.numChannels, config.imageSize.height, config.imageSize.width],
                                 found: [pixels.count], context: "ViT input pixels")
        }
        let d = hiddenSize, length = tokenCount, patchCount = tokenCount - 1
        var stages: [Tensor] = []

        let patches = try patchProjection(patchRows(pixels, batch: batch))
        if keepStages { stages.append(try patches.reshaped([batch, patchCount, d])) }
        var x = tokens(fromPatches: patches, batch: batch)
        if keepStages { stages.append(try x.reshaped([batch, length, d])) }

        // Every image has all its tokens: nothing to mask.
        let mask = Tensor(zeros: [batch, length])
        for layer in layers {
            let qkv = try layer.qkv(try layer.normBefore(x))
            let context = try MultiHeadAttention.selfAttention(
                qkv: qkv, batch: batch, length: length, heads: config.numAttentionHeads, additiveMask: mask)
            Self.add(try layer.attentionOutput(context), to: &x)
            var hidden = try layer.intermediate(try layer.normAfter(x))
            activation.apply(&hidden)
            Self.add(try layer.output(hidden), to: &x)
            if keepStages { stages.append(try x.reshaped([batch, length, d])) }
        }
        try finalNorm.apply(to: &x, adding: nil)

        var pooled = Tensor(zeros: [batch, d])
        for b in 0..<batch {
            pooled.data.replaceSubrange((b * d)..<((b + 1) * d), with: x.data[(b * length * d)..<((b * length + 1) * d)])
        }
        return ViTOutput(tokens: try x.reshaped([batch, length, d]), pooled: pooled, stages: stages)
    }

    /// im2col for a stride-p convolution with a p x p kernel: one row per patch, `[B*N, C*p*p]`.
    ///
    /// Patch (gy, gx) of image b is row `(b * rows + gy) * columns + gx` (HF's `flatten(2)` order);
    /// its columns run over channel, then kernel row, then kernel column, the layout of the conv
    /// weight `[d, C, p, p]`, so the projection is a plain `Linear` over these rows.
    func patchRows(_ pixels: [Float], batch: Int) -> Tensor {
        let channels = config.numChannels
        let (height, width) = (config.imageSize.height, config.imageSize.width)
        let (ph, pw) = (config.patchSize.height, config.patchSize.width)
        let (gridRows, gridColumns) = config.patchGrid
        let rowWidth = channels * ph * pw
        var out = Tensor(zeros: [batch * gridRows * gridColumns, rowWidth])
        pixels.withUnsafeBufferPointer { sb in
            out.data.withUnsafeMutableBufferPointer { ob in
                guard let src = sb.baseAddress, let dst = ob.baseAddress else { return }
                for b in 0..<batch {
                    for gy in 0..<gridRows {
                        for gx in 0..<gridColumns {
                            let row = dst + ((b * gridRows + gy) * gridColumns + gx) * rowWidth
                            for c in 0..<channels {
                                for ky in 0..<ph {
                                    // One kernel row is pw contiguous pixels of one image row.
                                    let from = src + ((b * channels + c) * height + gy * ph + ky) * width + gx * pw
                                    (row + (c * ph + ky) * pw).update(from: from, count: pw)
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// The embedding output `[B*(1+N), d]`: per image the CLS token then its N patch projections,
    /// each with its position embedding added.
    func tokens(fromPatches patches: Tensor, batch: Int) -> Tensor {
        let d = hiddenSize, length = tokenCount
        var x = Tensor(zeros: [batch * length, d])
        patches.data.withUnsafeBufferPointer { pb in
            clsToken.withUnsafeBufferPointer { cb in
                positionEmbeddings.data.withUnsafeBufferPointer { eb in
                    x.data.withUnsafeMutableBufferPointer { xb in
                        guard let patch = pb.baseAddress, let cls = cb.baseAddress,
                              let position = eb.baseAddress, let out = xb.baseAddress else { return }
                        for b in 0..<batch {
                            let image = out + b * length * d
                            image.update(from: cls, count: d)
                            (image + d).update(from: patch + b * (length - 1) * d, count: (length - 1) * d)
                            for t in 0..<length { Vec.add(image + t * d, position + t * d, count: d) }
                        }
                    }
                }
            }
        }
        return x
    }

    /// `x += y` (the pre-LN residual); the shapes are equal by construction.
    static func add(_ y: Tensor, to x: inout Tensor) {
        let n = min(x.count, y.count)
        y.data.withUnsafeBufferPointer { yb in
            x.data.withUnsafeMutableBufferPointer { xb in
                guard let yp = yb.baseAddress, let xp = xb.baseAddress else { return }
                Vec.add(xp, yp, count: n)
            }
        }
    }
}
