// Throughput of the Swift EfficientNet-Lite0 encoder (forward pass only, preprocessed input), in one run.
//
// Built by bench/image/efficientnet.sh with swiftc -O straight from Sources/Model (the package has no
// bench product), so the layer structs are visible here for the per-kind breakdown. Prints one JSON
// object: per batch the median wall and CPU seconds and images/s of `encode`, and the CPU time each
// kind of layer takes for one image (extra passes that run the layers one by one).
// Usage: efficientnet-bench MODEL_DIR [threads] [batches, e.g. 1,16] [min seconds] [per-block]
import CKernels
import COpenBLAS
import Foundation

func now(_ clock: clockid_t = CLOCK_MONOTONIC) -> Double {
    var ts = timespec()
    clock_gettime(clock, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// CPU seconds of the whole process (all threads): on a shared machine this moves much less than
/// wall time when other processes take turns on the cores.
func cpuNow() -> Double { now(CLOCK_PROCESS_CPUTIME_ID) }

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// Times `body` until `minSeconds` have passed (at least `minRuns` runs) after one warm-up run:
/// wall and CPU seconds of each run.
func measure(minRuns: Int = 5, minSeconds: Double, _ body: () throws -> Void) rethrows -> (wall: [Double], cpu: [Double]) {
    try body()
    var wall: [Double] = [], cpu: [Double] = []
    let start = now()
    while wall.count < minRuns || now() - start < minSeconds {
        let t0 = now(), c0 = cpuNow()
        try body()
        cpu.append(cpuNow() - c0)
        wall.append(now() - t0)
    }
    return (wall, cpu)
}

/// CPU seconds per kind of layer over `runs` forward passes, run layer by layer as `forward` does.
/// With `perBlock`, also per block (keys `blockNN.kind`).
func breakdown(_ net: EfficientNetLite, pixels: [Float], batch: Int, runs: Int, perBlock: Bool = false) throws -> [String: Double] {
    var seconds: [String: Double] = [:]
    func timed<T>(_ kind: String, _ block: Int? = nil, _ body: () throws -> T) rethrows -> T {
        let t0 = cpuNow()
        let result = try body()
        let t = cpuNow() - t0
        seconds[kind, default: 0] += t
        if let block, perBlock { seconds[String(format: "block%02d.", block) + kind, default: 0] += t }
        return result
    }
    for _ in 0..<runs {
        let nhwc = timed("input_layout") { net.channelsLast(pixels, batch: batch) }
        var x = try timed("stem") { try net.stem(nhwc) }
        for (i, block) in net.blocks.enumerated() {
            var hidden = x
            if let expand = block.expand { hidden = try timed("expand_1x1", i) { try expand(hidden) } }
            hidden = try timed("depthwise", i) { try block.depthwise(hidden) }
            x = try timed("project_1x1", i) { try block.project(hidden, adding: block.residual ? x : nil) }
        }
        let features = try timed("head_1x1") { try net.head(x) }
        _ = try timed("pool_classifier") {
            let cells = features.shape[1] * features.shape[2]
            let regions = try features.reshaped([batch, cells, features.shape[3]])
            return try net.classifier?(Pooling.maskedMean(regions, lengths: [Int](repeating: cells, count: batch), paddedLength: cells))
        }
    }
    return seconds.mapValues { $0 / Double(runs) }
}

let args = CommandLine.arguments
let modelDir = args.count > 1 ? args[1] : "models/efficientnet-lite0"
let threads = args.count > 2 ? Int(args[2]) ?? 1 : 1
let batches = args.count > 3 ? args[3].split(separator: ",").compactMap { Int($0) } : [1, 16]
let minSeconds = args.count > 4 ? Double(args[4]) ?? 5 : 5
let perBlock = args.count > 5 && args[5] == "per-block"
// KERNELS=avx2 runs the packed products on their AVX2 body: the A/B against the AVX-512 one.
if ProcessInfo.processInfo.environment["KERNELS"] == "avx2" { pck_force_avx2(1) }
let kernels = KernelBodies.widest
BLASThreads.set(threads)
FreedMemory.keepForReuse()

// PRECISION=bf16 (or auto, as the daemon's setting picks it here) runs the wider 1x1 convs' products
// in bf16 (EfficientNetLite.bf16MinimumInputs); fp32 by default.
let precisionSetting = ProcessInfo.processInfo.environment["PRECISION"] ?? "fp32"
guard let precision = precisionSetting == "auto" ? Precision.automatic : Precision(rawValue: precisionSetting) else {
    FileHandle.standardError.write(Data("PRECISION=\(precisionSetting): use fp32, bf16 or auto\n".utf8))
    exit(2)
}
let encoder = try EfficientNetLite(directory: URL(fileURLWithPath: modelDir), precision: precision)
func randomPixels(_ batch: Int) -> [Float] {
    var rng = SystemRandomNumberGenerator()
    return (0..<(batch * encoder.preprocess.valuesPerImage)).map { _ in Float.random(in: -1...1, using: &rng) }
}
var results: [[String: Any]] = []
for batch in batches {
    let pixels = randomPixels(batch)
    let times = try measure(minSeconds: minSeconds) { _ = try encoder.encode(pixels, batch: batch) }
    let m = median(times.wall), cpu = median(times.cpu), best = times.cpu.min() ?? cpu
    results.append(["batch": batch, "median_s": m, "images_per_s": Double(batch) / m, "runs": times.wall.count,
                    "median_cpu_s": cpu, "images_per_cpu_s": Double(batch) / cpu, "min_cpu_s": best])
    FileHandle.standardError.write(Data(String(format: "bench swift batch %d: %.1f images/s, %.1f images per CPU second (best run %.1f)\n",
                                               batch, Double(batch) / m, Double(batch) / cpu, Double(batch) / best).utf8))
}
// Where the time goes for one image: the mean of 5 passes.
let parts = try breakdown(encoder, pixels: randomPixels(1), batch: 1, runs: 5, perBlock: perBlock)
let report: [String: Any] = ["engine": "swift-openblas", "kernels": kernels, "threads": threads, "results": results,
                             "precision": precision.rawValue, "bf16_body": precision == .bf16 ? KernelBodies.bf16 : "none",
                             "batch1_cpu_ms_by_layer_kind": parts.mapValues { ($0 * 1e5).rounded() / 100 }]
let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
print(String(decoding: data, as: UTF8.self))
