// Throughput of the Swift BERT encoder on all-MiniLM-L6-v2, and OpenBLAS's sgemm rate, in one run.
// The sgemm rate is a reference only (OpenBLAS may be held to its Haswell kernels); the compute
// peak that "of peak" is taken against is bench/kernels/fma_peak.c's, run by bench/model/run.sh.
//
// Built by bench/model/run.sh with swiftc -O straight from Sources/Model (the package has no bench
// product); prints one JSON object. Inputs: fixed-length sequences of `length` ids ([CLS] ... [SEP]),
// so every batch is exactly B x L with no padding, like the ONNX Runtime and PyTorch baselines.
// The encoder runs on `threads` threads through its intra-op slices (OpenBLAS single-threaded);
// the sgemm rate is OpenBLAS's own, on the same number of threads.
//
// With PACKED_AB=QKV,OTHERS (row limits, e.g. 96,512) it also runs the same encoder with those
// limits for its packed weights (`BertEncoder.withPackedRowLimits`), one forward pass of each in
// turn, and reports the variant's rate and its ratio to the shipped limits taken from those
// interleaved passes: a same-run A/B for tuning the packed-vs-sgemm switch.
//
// With PRECISION_AB=bf16 the variant is instead the same encoder with bf16 products
// (`Precision.bf16`), passes in turn as above, and the report names the bf16 product's body
// ("avx512-bf16", or "portable" on a CPU without AVX512-BF16, which is no speed result).
import CKernels
import COpenBLAS
import Foundation

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// Times `body` until `minSeconds` have passed (at least `minRuns` runs) after one warm-up run.
func measure(minRuns: Int = 5, minSeconds: Double = 3, _ body: () throws -> Void) rethrows -> [Double] {
    try body()
    var times: [Double] = []
    let start = now()
    while times.count < minRuns || now() - start < minSeconds {
        let t0 = now()
        try body()
        times.append(now() - t0)
    }
    return times
}

/// One pass of `a` then one of `b`, in turn, until `minSeconds` have passed (at least `minRuns`
/// pairs) after one warm-up pass of each: load from other processes hits both alike.
func measureInTurn(minRuns: Int = 5, minSeconds: Double = 6, _ a: () throws -> Void, _ b: () throws -> Void) rethrows -> ([Double], [Double]) {
    try a(); try b()
    var timesA: [Double] = [], timesB: [Double] = []
    let start = now()
    while timesA.count < minRuns || now() - start < minSeconds {
        var t0 = now()
        try a()
        timesA.append(now() - t0)
        t0 = now()
        try b()
        timesB.append(now() - t0)
    }
    return (timesA, timesB)
}

/// sgemm GFLOP/s on square n x n x n products (the shape where OpenBLAS is near its peak).
func sgemmPeak(n: Int) -> Double {
    let a = [Float](repeating: 0.5, count: n * n), b = [Float](repeating: 0.25, count: n * n)
    var c = [Float](repeating: 0, count: n * n)
    let times = measure(minRuns: 5, minSeconds: 2) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(n),
                    1, a, Int32(n), b, Int32(n), 0, &c, Int32(n))
    }
    return 2 * Double(n * n * n) / median(times) / 1e9
}

let args = CommandLine.arguments
let modelDir = args.count > 1 ? args[1] : "models/all-MiniLM-L6-v2"
let threads = args.count > 2 ? Int(args[2]) ?? 2 : 2
// LENGTH=n measures n tokens per sentence instead (tweets are 10 to 20); the bar is stated at 64.
let length = ProcessInfo.processInfo.environment["LENGTH"].flatMap { Int($0) }.map { max(2, $0) } ?? 64
// KERNELS=avx2 runs the packed products on their AVX2 body: the A/B against the AVX-512 one.
if ProcessInfo.processInfo.environment["KERNELS"] == "avx2" { pck_force_avx2(1) }
let kernels = KernelBodies.widest
BLASThreads.set(threads)
FreedMemory.keepForReuse()

let encoder = try BertEncoder(directory: URL(fileURLWithPath: modelDir))
let variantLimits = ProcessInfo.processInfo.environment["PACKED_AB"].map { $0.split(separator: ",").compactMap { Int($0) } }
if let limits = variantLimits, limits.count != 2 {
    FileHandle.standardError.write(Data("PACKED_AB must be two row limits, QKV,OTHERS (for example 96,512)\n".utf8))
    exit(2)
}
if variantLimits != nil, Linear.defaultPackedRowLimit == Int.max {
    FileHandle.standardError.write(Data("PACKED_AB needs the AVX2 body (KERNELS=avx2): with the AVX-512 body every product takes the packed weight and the layers keep no plain one for sgemm\n".utf8))
    exit(2)
}
let precisionAB = ProcessInfo.processInfo.environment["PRECISION_AB"]
if let precisionAB, precisionAB != "bf16" || variantLimits != nil {
    FileHandle.standardError.write(Data("PRECISION_AB takes only bf16, and not together with PACKED_AB\n".utf8))
    exit(2)
}
let variant = try variantLimits.map { encoder.withPackedRowLimits(qkv: $0[0], others: $0[1]) }
    ?? precisionAB.map { _ in try BertEncoder(directory: URL(fileURLWithPath: modelDir), precision: .bf16) }

let d = encoder.hiddenSize, layers = encoder.layerCount
let inner = encoder.config.intermediateSize
// FLOPs of one forward pass per sequence: the six products of each layer plus the two of attention.
let flopsPerSequence = Double(layers) * (2 * Double(length) * Double(4 * d * d + 2 * d * inner)
                                         + 2 * 2 * Double(length * length * d))

// The machine may be shared: take the best of several sizes, before and after the encoder runs.
var peak = [1024, 1536, 2048].map { sgemmPeak(n: $0) }.max() ?? 0
var results: [[String: Any]] = []
// BATCHES=8 (comma-separated) measures only those batch sizes, for profiling one of them.
let batches = ProcessInfo.processInfo.environment["BATCHES"].map { $0.split(separator: ",").compactMap { Int($0) } } ?? [1, 8, 32]
for batch in batches {
    var rng = SystemRandomNumberGenerator()
    let ids = (0..<batch).map { _ in [101] + (0..<(length - 2)).map { _ in Int.random(in: 1000..<30000, using: &rng) } + [102] }
    // The encoder's own intra-op slices on `threads` threads, each sgemm single-threaded.
    BLASThreads.set(1)
    var times: [Double], variantTimes: [Double] = []
    if let variant {
        (times, variantTimes) = try measureInTurn({ _ = try encoder.forward(ids, threads: threads) },
                                                  { _ = try variant.forward(ids, threads: threads) })
    } else {
        times = try measure { _ = try encoder.forward(ids, threads: threads) }
    }
    BLASThreads.set(threads)
    let m = median(times)
    let gflops = flopsPerSequence * Double(batch) / m / 1e9
    var row: [String: Any] = ["batch": batch, "median_s": m, "sentences_per_s": Double(batch) / m,
                              "gflops": gflops, "fraction_of_sgemm_peak": gflops / peak, "runs": times.count]
    if precisionAB != nil, !variantTimes.isEmpty {
        // The ratio of medians of the interleaved passes (bf16 faster: above 1).
        row["variant"] = ["precision": "bf16", "bf16_body": KernelBodies.bf16,
                          "median_s": median(variantTimes), "sentences_per_s": Double(batch) / median(variantTimes),
                          "speedup_over_fp32": m / median(variantTimes)] as [String: Any]
    }
    if let limits = variantLimits, !variantTimes.isEmpty {
        // The ratio of medians of the interleaved passes (variant faster: above 1).
        row["variant"] = ["packed_row_limits": ["qkv": limits[0], "others": limits[1]],
                          "shipped_packed_row_limits": Linear.defaultPackedRowLimit,
                          "median_s": median(variantTimes), "sentences_per_s": Double(batch) / median(variantTimes),
                          "speedup_over_shipped": m / median(variantTimes)] as [String: Any]
    }
    results.append(row)
}
peak = max(peak, [1024, 1536, 2048].map { sgemmPeak(n: $0) }.max() ?? 0)
for i in results.indices {
    if let g = results[i]["gflops"] as? Double { results[i]["fraction_of_sgemm_peak"] = g / peak }
}
let report: [String: Any] = ["engine": "swift-openblas", "threads": threads, "length": length,
                             "sgemm_peak_gflops": peak, "kernels": kernels, "results": results]
let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
print(String(decoding: data, as: UTF8.self))
