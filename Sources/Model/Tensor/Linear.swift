import CKernels
import COpenBLAS

/// A fully connected layer `y = x · Wᵀ + b` with the weight in PyTorch's `[out, in]` layout.
///
/// The weight is used as stored: `cblas_sgemm` reads it transposed (`CblasTrans`), so loading a
/// checkpoint makes no transposed copy.
public struct Linear: Sendable {
    /// The weight, shape `[outFeatures, inFeatures]`.
    public let weight: Tensor
    /// The bias, `outFeatures` values, or `nil` for a layer without bias.
    public let bias: [Float]?
    /// The weight packed for `pck_gemm_packed`, in layers made `packedForShortInputs()`.
    private(set) var packedWeight: [Float]?
    /// The most rows per slice that take `packedWeight`, where there is one.
    private(set) var packedRowLimit = Linear.defaultPackedRowLimit

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
    }

    /// The same layer with a packed copy of its weight (twice the memory), which products of at
    /// most `packedRowLimit` rows per slice use instead of sgemm. For a short input OpenBLAS
    /// packs the whole weight on every call for a handful of rows, which costs more than the
    /// product; from about a hundred rows up sgemm catches up (figures in bench/model/README.md;
    /// `bench/kernels/run.sh` measures the packed product alone).
    public func packedForShortInputs() -> Linear {
        var copy = self
        copy.packedWeight = PackedWeight.pack(weight)
        return copy
    }

    /// The same layer with another row limit for its packed weight (for tuning runs such as
    /// `bench/model`'s A/B); a layer without a packed weight is returned unchanged.
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
    /// Output width.
    public var outFeatures: Int { weight.shape[0] }

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
        // Rows per slice against the limit (a product form would overflow at the AVX-512 limit).
        if let packedWeight, (m + threads - 1) / max(1, threads) <= packedRowLimit {
            return Tensor(uncheckedShape: outShape, data: Self.packedProduct(x, packedWeight, bias, m: m, n: n, k: k, threads: threads))
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

    /// `x · Wᵀ + bias` on the packed weight, split into slices of rows (bias added in registers).
    private static func packedProduct(_ x: Tensor, _ packed: [Float], _ bias: [Float]?, m: Int, n: Int, k: Int,
                                      threads: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: m * n) { buffer, initialized in
            initialized = m * n
            x.data.withUnsafeBufferPointer { a in
                packed.withUnsafeBufferPointer { w in
                    (bias ?? []).withUnsafeBufferPointer { b in
                        guard let c = buffer.baseAddress, let a0 = a.baseAddress, let w0 = w.baseAddress else { return }
                        // An empty array may still have a base address: only a given bias counts.
                        let b0 = bias == nil ? nil : b.baseAddress
                        // 12 rows: a whole block of the AVX-512 body, two of the AVX2 one.
                        Parallel.forEachSlice(count: m, threads: threads, granularity: 12) { rows in
                            PackedWeight.product(a0 + rows.lowerBound * k, rows: rows.count, inputs: k, packed: w0,
                                                 bias: b0, outputs: n, relu6: false, into: c + rows.lowerBound * n)
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
