import CKernels
import Foundation
import XCTest
@testable import Model

/// Paths and helpers shared by the model tests.
enum TestPaths {
    /// The repository root, from this file's location (Tests/ModelTests/TestSupport.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = root.appendingPathComponent("Tests/ModelTests/Fixtures")
    static let tinyBert = fixtures.appendingPathComponent("tiny-bert")
    static let models = URL(fileURLWithPath: ProcessInfo.processInfo.environment["POSTCLASSD_MODELS_DIR"]
                            ?? root.appendingPathComponent("models").path)
    static let miniLM = models.appendingPathComponent("all-MiniLM-L6-v2")
    static let golden = models.appendingPathComponent("golden")

    /// The folder holding the built products (postclassd, the .xctest bundle).
    static var productsDirectory: URL {
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            return bundle.bundleURL.deletingLastPathComponent()
        }
        return Bundle.main.bundleURL
    }
}

/// Files made by `scripts/setup-models.sh` (weights and golden outputs too large to commit).
///
/// Missing files fail the test under CI (`CI=true`), so a broken setup step never passes silently;
/// on a developer machine the test is skipped with the command that makes them.
func requireGeneratedFiles(_ urls: URL...) throws {
    let missing = urls.filter { !FileManager.default.fileExists(atPath: $0.path) }
    guard !missing.isEmpty else { return }
    let message = "missing \(missing.map(\.path).joined(separator: ", ")); run scripts/setup-models.sh (it installs all-MiniLM-L6-v2 and generates models/golden/)"
    if ProcessInfo.processInfo.environment["CI"] == "true" {
        XCTFail(message)
        throw XCTSkip("failed: " + message)
    }
    throw XCTSkip(message)
}

/// The largest absolute difference between two equal-length arrays.
func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "length \(a.count) vs \(b.count)")
    var m: Float = 0
    for i in a.indices { m = max(m, abs(a[i] - b[i])) }
    return m
}

func cosine(_ a: [Float], _ b: [Float]) -> Double {
    var dot = 0.0, na = 0.0, nb = 0.0
    for i in a.indices {
        dot += Double(a[i]) * Double(b[i]); na += Double(a[i]) * Double(a[i]); nb += Double(b[i]) * Double(b[i])
    }
    return dot / (na.squareRoot() * nb.squareRoot())
}

/// `expected.json` of a golden fixture.
struct GoldenTexts: Decodable {
    let texts: [String]
    let ids: [[Int]]
    let max_length: Int

    static func load(_ url: URL) throws -> GoldenTexts {
        try JSONDecoder().decode(GoldenTexts.self, from: Data(contentsOf: url))
    }
}

/// A temporary folder removed at the end of the test.
func temporaryDirectory(_ test: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("postclassd-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

/// Copies the tiny-bert fixture's config and vocab to `dir` and writes its weights renamed by `rename`
/// (return nil to drop a tensor) and reshaped by `reshape`.
func writeTinyBertVariant(to dir: URL, rename: (String) -> String? = { $0 },
                          transform: (String, Tensor) -> Tensor = { $1 }) throws {
    for name in ["config.json", "vocab.txt"] {
        try FileManager.default.copyItem(at: TestPaths.tinyBert.appendingPathComponent(name),
                                         to: dir.appendingPathComponent(name))
    }
    let source = try SafeTensorsFile(path: TestPaths.tinyBert.appendingPathComponent("model.safetensors").path)
    var writer = SafeTensorsWriter()
    for name in source.names where source.entries[name]?.dtype == "F16" {
        guard let newName = rename(name) else { continue }
        writer.add(newName, transform(name, try source.tensor(name)), as: .f16)
    }
    try writer.write(to: dir.appendingPathComponent("model.safetensors"))
}

/// Runs `check` once per bf16 body of `pck_gemm_packed_bf16` this CPU has ("amx-bf16" where it
/// has AMX-BF16, "avx512-bf16" where it has AVX512-BF16, then "portable"), passing the body's name
/// for failure messages.
func forEachBF16Body(_ check: (String) throws -> Void) rethrows {
    if Precision.cpuHasAMX {
        XCTAssertEqual(KernelBodies.bf16, "amx-bf16")
        try check("amx-bf16")
    } else {
        print("no AMX-BF16 here (CPU or OS): the AMX bf16 body is not tested here")
    }
    if Precision.cpuHasBF16 {
        pck_force_avx512_bf16(1)
        defer { pck_force_avx512_bf16(0) }
        XCTAssertEqual(KernelBodies.bf16, "avx512-bf16")
        try check("avx512-bf16")
    } else {
        print("this CPU has no AVX512-BF16: only the portable bf16 body is tested here")
    }
    pck_force_portable_bf16(1)
    defer { pck_force_portable_bf16(0) }
    XCTAssertEqual(KernelBodies.bf16, "portable")
    try check("portable")
}

/// How far two loads of one bundle (fp32 and bf16 products) agree on the same posts: per task, how
/// many labels are the same, and the largest change of any label's probability.
struct LabelAgreement {
    var same: [String: Int] = [:]
    var total: [String: Int] = [:]
    var worstProbability: Float = 0

    /// Classifies `posts` with both, in batches of 32 (as the daemon runs them); `each` sees every
    /// post's index and both label lists.
    static func compare(_ a: BundleClassifier, _ b: BundleClassifier, posts: [Post],
                        each: (Int, [TaskLabel], [TaskLabel]) -> Void = { _, _, _ in }) throws -> LabelAgreement {
        var result = LabelAgreement()
        for start in stride(from: 0, to: posts.count, by: 32) {
            let batch = Array(posts[start..<min(start + 32, posts.count)])
            var timings = StageTimings()
            let ra = a.classify(batch, timings: &timings), rb = b.classify(batch, timings: &timings)
            for (k, (pa, pb)) in zip(ra, rb).enumerated() {
                let la = try pa.get().labels, lb = try pb.get().labels
                XCTAssertEqual(la.map(\.task), lb.map(\.task))
                for (x, y) in zip(la, lb) {
                    result.total[x.task, default: 0] += 1
                    if x.label == y.label { result.same[x.task, default: 0] += 1 }
                    for (p, q) in zip(x.probabilities, y.probabilities) {
                        result.worstProbability = max(result.worstProbability, abs(p.probability - q.probability))
                    }
                }
                each(start + k, la, lb)
            }
        }
        return result
    }

    /// The share of `task`'s labels that are the same.
    func share(_ task: String) -> Double { Double(same[task] ?? 0) / Double(max(1, total[task] ?? 0)) }
}
