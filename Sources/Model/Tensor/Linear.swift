import CKernels
import COpenBLAS

/// A fully connected layer `y = x · Wᵀ + b` with the weight in PyTorch's `[out, in]` layout.
///
/// The weight is used as stored: `cblas_sgemm` reads it transposed (`CblasTrans`), so loading a
/// checkpoint makes no transposed copy.
public struct Linear: Sendable {
    /// The weight, shape `[outFeatures, inFeatures]`. A layer made `packedForShortInputs` that
    /// keeps only its packed copy (always in bf16; in fp32 where the packed product takes every row
    /// count) has a `weight` of `[0, inFeatures]`, with no values.
    public private(set) var weight: Tensor
    /// The bias, `outFeatures` values, or `nil` for a layer without bias.
    public let bias: [Float]?
    /// Output width.
    public let outFeatures: Int
    /// The packed copy of the weight that products take, in layers made `packedForShortInputs`.
    private(set) var packed: Packed?
    /// The most rows per slice that take an fp32 packed weight, where there is one.
    private(set) var packedRowLimit = Linear.defaultPackedRowLimit

    /// A packed copy of the weight.
    enum Packed: Sendable {
        /// For `pck_gemm_packed`: products of more rows per slice than `packedRowLimit` take sgemm
        /// on the plain weight, where the layer keeps it.
        case fp32([Float])
        /// For `pck_gemm_packed_bf16`, instead of the plain weight: every product takes it.
        case bf16([UInt16])
    }

    /// Creates a layer; `weight` must be rank 2 and `bias`, when given, must have one value per output.
    public init(weight: Tensor, bias: [Float]?) throws(InferenceError) {
        guard weight.rank == 2 else {
            throw .shapeMismatch(expected: [-1, -1], found: weight.shape, context: "Linear weight")
        }
        if let bias, bias.count != weight.shape[0] {
            throw .shapeMismatch(expected: [weight.shape[0]], found: [bias.count], context: "Linear bias")
        }
        self.weight = weight
        self.bias = bias
        outFeatures = weight.shape[0]
    }

    /// For weights whose shape the loader has already checked: rank 2, bias of `weight.shape[0]` values.
    init(unchecked weight: Tensor, bias: [Float]? = nil) {
        self.weight = weight
        self.bias = bias
        outFeatures = weight.shape[0]
    }

    /// The same layer with a packed copy of its weight for short inputs, in `precision`.
    ///
    /// fp32: products of at most `packedRowLimit` rows per slice use the packed copy instead of
    /// sgemm. For a short input OpenBLAS packs the whole weight on every call for a handful of
    /// rows, which costs more than the product; from about a hundred rows up sgemm catches up
    /// with the AVX2 body (figures in bench/model/README.md; `bench/kernels/run.sh` measures the
    /// packed product alone). With that body the plain weight stays for sgemm (twice the
    /// memory); where the limit is every row count (the AVX-512 body) it is dropped: one copy.
    ///
    /// bf16: the weight is packed to bf16 and the plain one dropped (half the fp32 weight's
    /// memory); every product takes the bf16 kernel, whatever its row count.
    public func packedForShortInputs(_ precision: Precision = .fp32) -> Linear {
        var copy = self
        switch precision {
        case .fp32:
            copy.packed = .fp32(PackedWeight.pack(weight))
            if copy.packedRowLimit == Int.max { copy.weight = Tensor(uncheckedShape: [0, inFeatures], data: []) }
        case .bf16:
            copy.packed = .bf16(PackedWeightBF16.pack(weight))
            copy.weight = Tensor(uncheckedShape: [0, inFeatures], data: [])
        }
        return copy
    }

    /// The precision of this layer's products: bf16 when it keeps a bf16 packed weight.
    public var precision: Precision {
        if case .bf16 = packed { return .bf16 }
        return .fp32
    }

    /// The same layer with another row limit for its fp32 packed weight (for tuning runs such as
    /// `bench/model`'s A/B); a layer without one, or without a plain weight to fall back on, is
    /// returned unchanged in effect.
    func withPackedRowLimit(_ rowLimit: Int) -> Linear {
        var copy = self
        copy.packedRowLimit = rowLimit
        return copy
    }

    /// The row limit a layer has unless `withPackedRowLimit(_:)` sets another: 96 rows per slice
    /// with the AVX2 body, every product with the AVX-512 one, which outruns single-threaded
    /// OpenBLAS (Haswell kernels) on MiniLM's shapes at every row count the encoder sees. Tuned
    /// with `bench/model`'s A/B of the limits; figures in bench/model/README.md.
    static let defaultPackedRowLimit = pck_uses_avx512() == 1 ? Int.max : 96

    /// Input width.
    public var inFeatures: Int { weight.shape[1] }

    /// Applies the layer to every row of `x` (`[..., inFeatures]` -> `[..., outFeatures]`).
    ///
    /// All rows go through one product: a batch of B posts of L tokens is one sgemm of B*L rows.
    /// With `threads > 1` the product is split into that many slices, each its own single-threaded
    /// sgemm (see `Parallel`): slices of rows when there are at least `rowsPerSliceForRowSplit` per
    /// slice, otherwise slices of output columns, so that a short input (one post) does not leave
    /// each slice packing the whole weight for a handful of rows.
    ///
    /// With `includingBias: false` the bias is left out, for a caller that adds it in its next pass
    /// over the output (`Activation.apply(_:bias:threads:)`, `LayerNorm.apply(to:adding:bias:threads:)`).
    public func callAsFunction(_ x: Tensor, threads: Int = 1, includingBias: Bool = true) throws(InferenceError) -> Tensor {
        guard x.lastDimension == inFeatures else {
            throw .shapeMismatch(expected: [-1, inFeatures], found: x.shape, context: "Linear input")
        }
        let m = x.rowCount, n = outFeatures, k = inFeatures
        var outShape = x.shape
        outShape[outShape.count - 1] = n
        if m == 0 { return Tensor(uncheckedShape: outShape, data: []) }
        let bias = includingBias ? self.bias : nil
        switch packed {
        case let .bf16(w):
            let values = Self.packedProduct(x, w, bias, m: m, n: n, threads: threads) { a, rows, w, b, c in
                PackedWeightBF16.product(a, rows: rows, inputs: k, packed: w, bias: b, outputs: n, relu6: false, into: c)
            }
            return Tensor(uncheckedShape: outShape, data: values)
        // Rows per slice against the limit (a product form would overflow at the AVX-512 limit).
        case let .fp32(w) where weight.rowCount == 0 || (m + threads - 1) / max(1, threads) <= packedRowLimit:
            let values = Self.packedProduct(x, w, bias, m: m, n: n, threads: threads) { a, rows, w, b, c in
                PackedWeight.product(a, rows: rows, inputs: k, packed: w, bias: b, outputs: n, relu6: false, into: c)
            }
            return Tensor(uncheckedShape: outShape, data: values)
        default:
            break
        }
        let values = [Float](unsafeUninitializedCapacity: m * n) { buffer, initialized in
            initialized = m * n
            guard let c = buffer.baseAddress else { return }
            x.data.withUnsafeBufferPointer { a in
                weight.data.withUnsafeBufferPointer { w in
                    guard let a0 = a.baseAddress, let w0 = w.baseAddress else { return }
                    if m >= Self.rowsPerSliceForRowSplit * threads {
                        Parallel.forEachSlice(count: m, threads: threads, granularity: 16) { rows in
                            Self.product(a0 + rows.lowerBound * k, w0, bias, c + rows.lowerBound * n,
                                         m: rows.count, n: n, k: k, columns: 0..<n)
                        }
                    } else {
                        // Slices of 16 columns keep each slice's width a multiple of the sgemm kernel's.
                        Parallel.forEachSlice(count: n, threads: threads, granularity: 16) { cols in
                            Self.product(a0, w0, bias, c, m: m, n: n, k: k, columns: cols)
                        }
                    }
                }
            }
        }
        return Tensor(uncheckedShape: outShape, data: values)
    }

    /// Below this many rows per slice, a split product slices columns instead of rows: with
    /// single-threaded OpenBLAS on MiniLM's shapes, row slices only win from a few hundred rows up
    /// (figures in bench/model/README.md).
    static let rowsPerSliceForRowSplit = 128

    /// `x · Wᵀ + bias` on a packed weight (fp32 or bf16, through `kernel`), split into slices of
    /// rows (bias added in registers).
    private static func packedProduct<Element>(
        _ x: Tensor, _ packed: [Element], _ bias: [Float]?, m: Int, n: Int, threads: Int,
        kernel: (_ rows: UnsafePointer<Float>, _ count: Int, _ packed: UnsafePointer<Element>, _ bias: UnsafePointer<Float>?,
                 _ into: UnsafeMutablePointer<Float>) -> Void
    ) -> [Float] {
        let k = x.lastDimension
        return [Float](unsafeUninitializedCapacity: m * n) { buffer, initialized in
            initialized = m * n
            x.data.withUnsafeBufferPointer { a in
                packed.withUnsafeBufferPointer { w in
                    (bias ?? []).withUnsafeBufferPointer { b in
                        guard let c = buffer.baseAddress, let a0 = a.baseAddress, let w0 = w.baseAddress else { return }
                        // An empty array may still have a base address: only a given bias counts.
                        let b0 = bias == nil ? nil : b.baseAddress
                        // 12 rows: a whole block of the AVX-512 bodies, two of the AVX2 one.
                        Parallel.forEachSlice(count: m, threads: threads, granularity: 12) { rows in
                            kernel(a0 + rows.lowerBound * k, rows.count, w0, b0, c + rows.lowerBound * n)
                        }
                    }
                }
            }
        }
    }

    /// `c[:, columns] = a · w[columns]ᵀ + bias[columns]`, with `c` uninitialised before the call.
    private static func product(_ a: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: [Float]?,
                                _ c: UnsafeMutablePointer<Float>, m: Int, n: Int, k: Int, columns: Range<Int>) {
        let width = columns.count, first = columns.lowerBound
        // One pass over the output before sgemm: the bias rows (then beta = 1 folds the bias add
        // into the product), or zeros without bias. Starting from a zeroed tensor would add a
        // second pass over an output that is megabytes at batch 32.
        if let bias {
            bias.withUnsafeBufferPointer { b in
                guard let bp = b.baseAddress else { return }
                for row in 0..<m { (c + row * n + first).initialize(from: bp + first, count: width) }
            }
        } else {
            for row in 0..<m { (c + row * n + first).initialize(repeating: 0, count: width) }
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                    Int32(m), Int32(width), Int32(k),
                    1, a, Int32(k),
                    w + first * k, Int32(k),
                    bias == nil ? 0 : 1, c + first, Int32(n))
    }
}

/// OpenBLAS's thread pool size. It is process-wide, so callers set it once at start-up.
public enum BLASThreads {
    /// Sets the number of threads OpenBLAS uses for each product.
    public static func set(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    /// The number of threads OpenBLAS uses now.
    public static var current: Int { Int(openblas_get_num_threads()) }
}
