import Foundation
import TestSupport
import Testing

/// Training to serving: `tools/train/train_sarcasm.py` fine-tunes a sarcasm head with LoRA adapters
/// on the text encoder's top layers (a short run on 160 iSarcasmEval posts), exports a bundle, and
/// `postclassd classify` on that bundle gives torch's probabilities on every held-out post.
///
/// Needs the training venv (`tools/train/setup-venv.sh`, which `.ci/run` runs) and the models
/// from scripts/setup-models.sh.
@Suite(.serialized) struct SarcasmTrainingTests {
    static let python = repositoryRoot.appendingPathComponent("models/.venv-train/bin/python").path
    static let trainer = repositoryRoot.appendingPathComponent("tools/train/train_sarcasm.py").path
    static let data = repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/data/isarcasmeval/train.En.csv").path

    /// Held-out texts: none of them is among the 160 training posts; empty, emoji, accents and one
    /// longer than the 77 tokens the head reads.
    static let texts = ["Oh great, another Monday. Just what I needed.", "The new library opens on Saturday at 10am.",
                        "", "I just LOVE waiting 45 minutes on hold 🙃🙃", "Café déjà vu: the naïve coöperation",
                        String(repeating: "so much fun sitting in traffic every single day ", count: 12),
                        "thanks a lot, weather. really appreciate the rain on my only day off"]

    @Test("a bundle fine-tuned with adapters serves torch's probabilities within 1e-4")
    func exportedAdapterBundleMatchesTorch() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.python) else {
            throw TestFailure("missing \(Self.python): run tools/train/setup-venv.sh (the training toolkit's PyTorch venv)")
        }
        guard FileManager.default.fileExists(atPath: Self.data) else {
            throw TestFailure("missing \(Self.data): the iSarcasmEval training data lives in ../shared/data beside the repository")
        }
        // Under models/, beside the encoders, so the bundle links them instead of copying 190 MB.
        let bundle = repositoryRoot.appendingPathComponent("models/.test-sarcasm-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: bundle) }
        let train = try runProgram(Self.python, [Self.trainer, "--data", Self.data, "--limit", "160", "--epochs", "2",
                                                 "--out", bundle.path], timeout: .seconds(300))
        #expect(train.status == 0, "training failed: \(train.output)")

        let entry = try JSONSerialization.jsonObject(with: Data(contentsOf: bundle.appendingPathComponent("head-entry.json"))) as? [String: Any]
        #expect(entry?["text_adapter"] as? String == "heads/sarcasm-adapter.safetensors", "the export carries the adapters")

        let posts = try SarcasmTrainingTests.texts.enumerated().map { i, text in
            String(decoding: try JSONSerialization.data(withJSONObject: ["id": "held-\(i)", "text": text], options: [.sortedKeys]), as: UTF8.self)
        }.joined(separator: "\n") + "\n"
        let file = bundle.appendingPathComponent("held-out.jsonl")
        try posts.write(to: file, atomically: true, encoding: .utf8)

        let torch = try runProgram(Self.python, [Self.trainer, "--predict", file.path, "--out", bundle.path],
                                   includeStandardError: false, timeout: .seconds(120))
        #expect(torch.status == 0, "torch prediction failed: \(torch.output)")
        // fp32, as torch computes (auto may take bf16 on this CPU).
        let served = try runProgram(try Binaries.postclassd.path, ["classify", file.path, "--model", bundle.path, "--precision", "fp32"],
                                    includeStandardError: false, timeout: .seconds(120))
        #expect(served.status == 0, "postclassd classify failed: \(served.output)")

        let expected = try Self.torchProbabilities(torch.output)
        let actual = try Self.servedProbabilities(served.output)
        #expect(expected.count == Self.texts.count && actual.count == Self.texts.count)
        var largest = 0.0
        for (id, p) in expected {
            let q = try #require(actual[id], "postclassd gave no sarcasm label for \(id)")
            #expect(p.count == 2 && q.count == 2)
            for (a, b) in zip(p, q) { largest = max(largest, abs(a - b)) }
        }
        #expect(largest < 1e-4, "largest difference between torch and postclassd: \(largest)")
    }

    /// `{"id", "probabilities": [not, sarcastic]}` lines, by id.
    static func torchProbabilities(_ output: String) throws -> [String: [Double]] {
        var out: [String: [Double]] = [:]
        for line in output.split(separator: "\n") {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            if let id = object?["id"] as? String, let p = object?["probabilities"] as? [Double] { out[id] = p }
        }
        return out
    }

    /// The sarcasm probabilities [not_sarcastic, sarcastic] of `postclassd classify`'s records, by id.
    static func servedProbabilities(_ output: String) throws -> [String: [Double]] {
        var out: [String: [Double]] = [:]
        for line in output.split(separator: "\n") {
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let id = object["id"] as? String,
                  let sarcasm = (object["labels"] as? [String: Any])?["sarcasm"] as? [String: Any],
                  let p = sarcasm["probabilities"] as? [String: Any],
                  let no = (p["not_sarcastic"] as? NSNumber)?.doubleValue, let yes = (p["sarcastic"] as? NSNumber)?.doubleValue
            else { continue }
            out[id] = [no, yes]
        }
        return out
    }
}
