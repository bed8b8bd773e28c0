import CKernels

extension MBConv {
    /// The block over one image, fused row band by row band: each expanded input row is computed
    /// once into a ring of `k` rows, each depthwise output row is computed from the ring, and every
    /// `band` of those rows is projected at once. The expanded map (112 x 112 x 96 floats, 4.8 MB,
    /// in block 1 of EfficientNet-Lite0) then never leaves the cache, where the layer-by-layer
    /// path writes it out and reads it back twice. Same kernels, same sums: results equal the
    /// layer-by-layer path's.
    ///
    /// - Parameter x: `[1, H, W, C]`, channels-last.
    func fusedImage(_ x: Tensor) throws(InferenceError) -> Tensor {
        let k = depthwise.kernelSize, stride = depthwise.stride, pad = depthwise.padding
        let hidden = depthwise.channels, cin = inChannels, cout = outChannels
        guard x.rank == 4, x.shape[0] == 1, x.shape[3] == cin,
              let outH = ConvPadding.outputSize(x.shape[1], before: pad.top, after: pad.bottom, kernel: k, stride: stride),
              let outW = ConvPadding.outputSize(x.shape[2], before: pad.left, after: pad.right, kernel: k, stride: stride) else {
            throw .shapeMismatch(expected: [1, -1, -1, cin], found: x.shape, context: "fused MBConv input (one image)")
        }
        let (h, w) = (x.shape[1], x.shape[2])
        // Project at least ~64 pixels per product, so its tiles of 6 rows stay full.
        let band = min(outH, max(1, (64 + outW - 1) / outW))
        let ringRows = expand == nil ? 0 : k
        let zeros = [Float](repeating: 0, count: w * hidden)
        var ring = [Float](repeating: 0, count: ringRows * w * hidden)
        var depthwiseRows = [Float](repeating: 0, count: band * outW * hidden)
        let count = outH * outW * cout
        let values = [Float](unsafeUninitializedCapacity: count) { yb, initialized in
            x.data.withUnsafeBufferPointer { xb in
                zeros.withUnsafeBufferPointer { zb in
                    ring.withUnsafeMutableBufferPointer { rb in
                        depthwiseRows.withUnsafeMutableBufferPointer { db in
                            guard let xp = xb.baseAddress, let zp = zb.baseAddress, let yp = yb.baseAddress,
                                  let dp = db.baseAddress else { return }
                            run(input: xp, height: h, width: w, zeros: zp, ring: rb.baseAddress, depthwiseRows: dp,
                                band: band, outHeight: outH, outWidth: outW, output: yp)
                        }
                    }
                }
            }
            initialized = count
        }
        return Tensor(uncheckedShape: [1, outH, outW, cout], data: values)
    }

    private func run(input: UnsafePointer<Float>, height h: Int, width w: Int, zeros: UnsafePointer<Float>,
                     ring: UnsafeMutablePointer<Float>?, depthwiseRows: UnsafeMutablePointer<Float>, band: Int,
                     outHeight: Int, outWidth: Int, output: UnsafeMutablePointer<Float>) {
        let k = depthwise.kernelSize, stride = depthwise.stride, pad = depthwise.padding
        let hidden = depthwise.channels, cin = inChannels, cout = outChannels
        let rows = UnsafeMutablePointer<UnsafePointer<Float>?>.allocate(capacity: k)
        defer { rows.deallocate() }
        var nextExpanded = 0  // the first input row not yet in the ring
        depthwise.weight.data.withUnsafeBufferPointer { dw in
            depthwise.bias.withUnsafeBufferPointer { dbias in
                guard let dwp = dw.baseAddress, let dbp = dbias.baseAddress else { return }
                var bandStart = 0
                for oy in 0..<outHeight {
                    let top = oy * stride - pad.top
                    for ky in 0..<k {
                        let iy = top + ky
                        guard iy >= 0, iy < h else { rows[ky] = zeros; continue }
                        guard let expand, let ring else { rows[ky] = input + iy * w * cin; continue }
                        let slot = ring + (iy % k) * w * hidden
                        // Rows arrive in increasing order; a new one replaces row iy - k, which
                        // no window from here on needs.
                        while nextExpanded <= iy {
                            expand.product(input + nextExpanded * w * cin, rows: w,
                                           into: ring + (nextExpanded % k) * w * hidden)
                            nextExpanded += 1
                        }
                        rows[ky] = UnsafePointer(slot)
                    }
                    let inBand = oy - bandStart
                    pck_depthwise_row(rows, k, dwp, dbp, hidden, w, pad.left, stride, outWidth,
                                      depthwise.relu6 ? 1 : 0, depthwiseRows + inBand * outWidth * hidden)
                    if inBand + 1 == band || oy + 1 == outHeight {
                        let pixels = (inBand + 1) * outWidth, first = bandStart * outWidth
                        project.product(depthwiseRows, rows: pixels, adding: residual ? input + first * cin : nil,
                                        into: output + first * cout)
                        bandStart = oy + 1
                    }
                }
            }
        }
    }
}
