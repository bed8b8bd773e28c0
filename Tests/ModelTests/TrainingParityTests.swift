import Foundation
import Synchronization
import XCTest
@testable import Model

/// Training to serving, end to end: the training toolkit (tools/train, PyTorch in
/// models/.venv-train) trains small heads in seconds on the synthetic set
/// (tools/train/make_synthetic.py), exports bundles, and predicts the held-out posts in torch;
/// `postclassd classify` on the same posts with the exported bundle must give the same
/// probabilities (within 1e-4 on every post) and labels, and the heads must have learned the
/// synthetic tasks (accuracy well above chance on the held-out split).
///
/// Needs models/.venv-train (tools/train/setup-venv.sh): the tests fail without it, with that
/// command in the message, because a skipped parity test would let training and serving drift
/// apart unnoticed. Needs the default bundle's encoders (scripts/setup-models.sh).
final class TrainingParityTests: XCTestCase {
    static let tolerance = 1e-4
    /// Accuracy each head must reach on the held-out posts (100, 91 of them with an image). Chance is 0.5 for sarcasm and
    /// 1/3 for correlation; the margins below the measured accuracies (README, tools/train) leave
    /// room for another machine's arithmetic while still failing a head that learned nothing.
    static let minimumSarcasmAccuracy = 0.85
    static let minimumCorrelationAccuracy = 0.7

    /// Settings for heads that train in seconds: small widths, one layer, few epochs.
    static let clfaSizes = ["--hidden", "64", "--mapping-hidden", "128", "--layers", "1", "--heads", "4",
                            "--inner", "128", "--epochs", "15"]
    static let ananetSizes = ["--width", "32", "--projection", "32", "--epochs", "30"]

    override class func tearDown() {
        SyntheticSet.remove()
        super.tearDown()
    }

    func testCLFATextOnlyServesWhatItTrained() throws {
        try trainAndCompare(trainer: "train_clfa.py", task: "sarcasm", labelKey: "sarcasm",
                            options: Self.clfaSizes + ["--text-only"], minimumAccuracy: Self.minimumSarcasmAccuracy)
    }

    func testCLFAWithImagesServesWhatItTrained() throws {
        try trainAndCompare(trainer: "train_clfa.py", task: "sarcasm", labelKey: "sarcasm",
                            options: Self.clfaSizes + ["--no-image", "learned_token"],
                            minimumAccuracy: Self.minimumSarcasmAccuracy)
    }

    func testAnANetServesWhatItTrained() throws {
        try trainAndCompare(trainer: "train_ananet.py", task: "correlation", labelKey: "correlation",
                            options: Self.ananetSizes, minimumAccuracy: Self.minimumCorrelationAccuracy)
    }

    /// The torch heads against the numpy references the engine is golden-tested against
    /// (tools/train/check_clfa.py, check_ananet.py: 1e-5 in float64, 1e-4 in float32).
    func testTorchHeadsMatchTheReferences() throws {
        let python = try Self.trainingPython()
        for script in ["check_clfa.py", "check_ananet.py"] {
            let output = try Self.run(python, [TestPaths.root.appendingPathComponent("tools/train/\(script)").path])
            XCTAssertTrue(String(decoding: output, as: UTF8.self).contains("agrees with"), script)
        }
    }

    // MARK: - The steps

    /// Trains with `trainer`, predicts the test split in torch, classifies it with the daemon, compares.
    private func trainAndCompare(trainer: String, task: String, labelKey: String, options: [String],
                                 minimumAccuracy: Double) throws {
        let python = try Self.trainingPython()
        let data = try SyntheticSet.shared()
        let work = try temporaryDirectory(self)
        let bundle = work.appendingPathComponent("bundle")
        let predictions = work.appendingPathComponent("predictions.jsonl")
        let posts = work.appendingPathComponent("posts.jsonl")
        let binary = TestPaths.productsDirectory.appendingPathComponent("postclassd")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            return XCTFail("\(binary.path) is not built; run `swift build`")
        }
        let started = Date()
        try Self.run(python, [TestPaths.root.appendingPathComponent("tools/train/\(trainer)").path,
                              "--data", data.train.path, "--test", data.test.path, "--label-key", labelKey,
                              "--base", TestPaths.models.appendingPathComponent("default").path,
                              "--out", bundle.path, "--only-this-head", "--seed", "0",
                              "--postclassd", binary.path, "--cache", data.cache.path,
                              "--predict", data.test.path, "--predictions-out", predictions.path,
                              "--posts-out", posts.path] + options)
        let trained = Date()
        // fp32, as torch computes (auto may take bf16 on this CPU).
        let classified = try Self.run(binary, ["classify", posts.path, "--model", bundle.path, "--precision", "fp32"])
        print("\(trainer) \(options.joined(separator: " ")): trained and predicted in \(Int(trained.timeIntervalSince(started))) s, classified in \(Int(Date().timeIntervalSince(trained))) s")

        let torch = try Self.lines(Data(contentsOf: predictions))
        let daemon = try Self.lines(classified)
        let gold = try Self.lines(Data(contentsOf: data.test))
        XCTAssertEqual(torch.count, gold.count)
        XCTAssertEqual(daemon.count, gold.count)
        var worst = 0.0, right = 0, judged = 0
        for (i, want) in gold.enumerated() where i < min(torch.count, daemon.count) {
            let id = want["id"] as? String
            XCTAssertEqual(torch[i]["id"] as? String, id)
            XCTAssertEqual(daemon[i]["id"] as? String, id)
            guard let fromTorch = Self.label(torch[i], task), let fromDaemon = Self.label(daemon[i], task) else {
                XCTFail("post \(id ?? "?"): no \(task) label in torch's or the daemon's output: \(daemon[i])"); continue
            }
            XCTAssertEqual(fromDaemon.label, fromTorch.label, "post \(id ?? "?")")
            XCTAssertEqual(Set(fromDaemon.probabilities.keys), Set(fromTorch.probabilities.keys), "post \(id ?? "?")")
            for (name, p) in fromTorch.probabilities {
                worst = max(worst, abs(p - (fromDaemon.probabilities[name] ?? .infinity)))
            }
            // Posts without an expected label (correlation without an image) are not judged.
            if let expected = want[labelKey] as? String {
                judged += 1
                if fromDaemon.label == expected { right += 1 }
            }
        }
        let accuracy = Double(right) / Double(max(judged, 1))
        print("\(trainer): max |p_daemon - p_torch| \(worst) over \(gold.count) posts; daemon accuracy \(accuracy) on \(judged)")
        XCTAssertLessThanOrEqual(worst, Self.tolerance, "the daemon's probabilities differ from torch's")
        XCTAssertGreaterThanOrEqual(accuracy, minimumAccuracy, "the \(task) head did not learn the synthetic task")

        // The training record says what the trainer measured on the same posts.
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: bundle.appendingPathComponent("training.json"))) as? [String: Any]
        let heldOut = (record?["held_out"] as? [String: Any])?["test"] as? [String: Any]
        XCTAssertEqual(heldOut?["posts"] as? Int, judged)
        let trainData = (record?["data"] as? [String: Any])?["train"] as? [String: Any]
        XCTAssertEqual((trainData?["sha256"] as? String)?.count, 64, "training.json names the data by its sha256")
    }

    // MARK: - Helpers

    /// models/.venv-train/bin/python, or a failure that says how to make it.
    static func trainingPython() throws -> URL {
        try requireGeneratedFiles(TestPaths.models.appendingPathComponent("default/manifest.json"),
                                  TestPaths.models.appendingPathComponent("glove-6b-50d/config.json"))
        let python = TestPaths.models.appendingPathComponent(".venv-train/bin/python")
        guard FileManager.default.isExecutableFile(atPath: python.path) else {
            let message = "\(python.path) is missing: run `bash tools/train/setup-venv.sh` (the training toolkit's PyTorch environment; CI runs it)"
            XCTFail(message)
            throw XCTSkip("failed: " + message)
        }
        return python
    }

    struct Label { let label: String; let probabilities: [String: Double] }

    static func label(_ line: [String: Any], _ task: String) -> Label? {
        guard let entry = (line["labels"] as? [String: Any])?[task] as? [String: Any],
              let label = entry["label"] as? String else { return nil }
        let probabilities = (entry["probabilities"] as? [String: Any] ?? [:]).compactMapValues { ($0 as? NSNumber)?.doubleValue }
        return Label(label: label, probabilities: probabilities)
    }

    static func lines(_ data: Data) throws -> [[String: Any]] {
        try data.split(separator: UInt8(ascii: "\n")).map { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                throw TrainingTestError.notAnObject(String(decoding: line.prefix(200), as: UTF8.self))
            }
            return object
        }
    }

    /// Runs a program to completion; its stdout, or an error with its stderr's tail when it fails.
    @discardableResult
    static func run(_ executable: URL, _ arguments: [String]) throws -> Data {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("postclassd-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("stdout"), err = folder.appendingPathComponent("stderr")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        try process.run()
        process.waitUntilExit()
        let stderr = String(decoding: try Data(contentsOf: err).suffix(3000), as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw TrainingTestError.failed(command: ([executable.lastPathComponent] + arguments.prefix(3)).joined(separator: " "),
                                           status: process.terminationStatus, stderr: stderr)
        }
        return try Data(contentsOf: out)
    }
}

/// The synthetic set, made once per test run (make_synthetic.py, seed 7: 360 training posts on 120
/// pictures, 100 held-out posts on pictures of their own), with one image-region cache shared by
/// the tests, so the engine encodes each picture once.
enum SyntheticSet {
    struct Paths { let folder: URL; let train: URL; let test: URL; let cache: URL }
    private static let made = Mutex<Paths?>(nil)

    static func shared() throws -> Paths {
        try made.withLock { paths in
            if let paths { return paths }
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("postclassd-synthetic-\(UUID().uuidString)")
            try TrainingParityTests.run(try TrainingParityTests.trainingPython(), [
                TestPaths.root.appendingPathComponent("tools/train/make_synthetic.py").path,
                "--out", folder.path, "--train", "360", "--test", "100", "--captions-per-image", "3", "--seed", "7"])
            let made = Paths(folder: folder, train: folder.appendingPathComponent("train.jsonl"), test: folder.appendingPathComponent("test.jsonl"),
                             cache: folder.appendingPathComponent("region-cache"))
            paths = made
            return made
        }
    }

    /// Removes the set (called once the test class has run).
    static func remove() {
        made.withLock { paths in
            if let paths { try? FileManager.default.removeItem(at: paths.folder) }
            paths = nil
        }
    }
}

enum TrainingTestError: Error, CustomStringConvertible {
    case failed(command: String, status: Int32, stderr: String)
    case notAnObject(String)

    var description: String {
        switch self {
        case let .failed(command, status, stderr): return "\(command) … exited with \(status):\n\(stderr)"
        case let .notAnObject(line): return "an output line is not a JSON object: \(line)"
        }
    }
}
