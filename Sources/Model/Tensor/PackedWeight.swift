import CKernels

/// A `[out, in]` weight laid out for the packed-weight product `pck_gemm_packed`: panels of 16
/// output channels, each holding the panel's 16 weights of every input side by side. Packing is
/// done once, at load, so that no product packs the weight again.
enum PackedWeight {
    /// The packed copy of a rank-2 `[out, in]` weight.
    static func pack(_ weight: Tensor) -> [Float] {
        let (out, inputs) = (weight.shape[0], weight.shape[1])
        let count = pck_packed_weight_count(out, inputs)
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            weight.data.withUnsafeBufferPointer { w in
                if let dst = buffer.baseAddress, let src = w.baseAddress { pck_pack_weight(src, out, inputs, dst) }
            }
            initialized = count
        }
    }

    /// `act(x · Wᵀ + bias + residual)` for `rows` rows of `inputs` values: `rows * outputs` values.
    /// `bias` holds `outputs` values; `residual`, when given, `rows * outputs`.
    static func product(_ x: [Float], rows: Int, inputs: Int, packed: [Float], bias: [Float], residual: [Float]?,
                        outputs: Int, relu6: Bool) -> [Float] {
        [Float](unsafeUninitializedCapacity: rows * outputs) { y, initialized in
            x.withUnsafeBufferPointer { a in
                packed.withUnsafeBufferPointer { w in
                    bias.withUnsafeBufferPointer { b in
                        (residual ?? []).withUnsafeBufferPointer { r in
                            guard let ap = a.baseAddress, let wp = w.baseAddress, let yp = y.baseAddress else { return }
                            // An empty array may still have a base address: only a given residual counts.
                            product(ap, rows: rows, inputs: inputs, packed: wp, bias: b.baseAddress,
                                    residual: residual == nil ? nil : r.baseAddress, outputs: outputs, relu6: relu6, into: yp)
                        }
                    }
                }
            }
            initialized = rows * outputs
        }
    }

    /// The same product into `y`, which holds room for `rows * outputs` values.
    static func product(_ x: UnsafePointer<Float>, rows: Int, inputs: Int, packed: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>? = nil, outputs: Int, relu6: Bool,
                        into y: UnsafeMutablePointer<Float>) {
        pck_gemm_packed(x, rows, inputs, packed, bias, residual, outputs, Int32(relu6 ? PCK_ACT_RELU6 : PCK_ACT_NONE), y)
    }
}

/// A `[out, in]` weight packed once to bfloat16 for `pck_gemm_packed_bf16`: panels of 16 output
/// channels holding pairs of inputs side by side (the operand of `vdpbf16ps`), each value rounded
/// to nearest even.
enum PackedWeightBF16 {
    /// The bf16 packed copy of a rank-2 `[out, in]` weight.
    static func pack(_ weight: Tensor) -> [UInt16] {
        let (out, inputs) = (weight.shape[0], weight.shape[1])
        let count = pck_packed_bf16_count(out, inputs)
        return [UInt16](unsafeUninitializedCapacity: count) { buffer, initialized in
            weight.data.withUnsafeBufferPointer { w in
                if let dst = buffer.baseAddress, let src = w.baseAddress { pck_pack_weight_bf16(src, out, inputs, dst) }
            }
            initialized = count
        }
    }

    /// `act(x · Wᵀ + bias + residual)` with x rounded to bf16, into `y` (room for
    /// `rows * outputs` values); the contract of `PackedWeight.product(_:rows:inputs:packed:...)`.
    static func product(_ x: UnsafePointer<Float>, rows: Int, inputs: Int, packed: UnsafePointer<UInt16>,
                        bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>? = nil, outputs: Int, relu6: Bool,
                        into y: UnsafeMutablePointer<Float>) {
        pck_gemm_packed_bf16(x, rows, inputs, packed, bias, residual, outputs,
                             Int32(relu6 ? PCK_ACT_RELU6 : PCK_ACT_NONE), y)
    }
}
