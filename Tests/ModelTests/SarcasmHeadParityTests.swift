import Foundation
import XCTest
@testable import Model

/// The committed default sarcasm head (tools/train/sarcasm-head) on the real all-MiniLM-L6-v2,
/// against the probabilities the training tools computed with the numpy reference encoder
/// (examples.json): the engine runs what was trained.
final class SarcasmHeadParityTests: XCTestCase {
    func testSwiftEngineMatchesTrainingReference() throws {
        try requireGeneratedFiles(TestPaths.miniLM.appendingPathComponent("model.safetensors"))
        let folder = TestPaths.root.appendingPathComponent("tools/train/sarcasm-head")
        struct Example: Decodable { let text: String; let ids: [Int]; let p_sarcastic: Double; let label: String }
        struct Examples: Decodable { let threshold: Double; let text_length: Int; let examples: [Example] }
        let examples = try JSONDecoder().decode(Examples.self, from: Data(contentsOf: folder.appendingPathComponent("examples.json")))
        let config = try JSONDecoder().decode(CLFAConfig.self, from: Data(contentsOf: folder.appendingPathComponent("config.json")))
        let head = try CLFAHead(weights: SafeTensorsFile(path: folder.appendingPathComponent("sarcasm.safetensors").path), config: config)
        XCTAssertNil(head.imageWidth, "the default sarcasm head is text-only")
        XCTAssertEqual(head.layerCount, 0)

        let text = try BertTextEncoder(directory: TestPaths.miniLM)
        let tokenized = examples.examples.map { text.tokenizer.encode($0.text, maxLength: examples.text_length) }
        XCTAssertEqual(tokenized, examples.examples.map(\.ids), "token ids")
        let states = try text.encoder.forward(tokenized)
        let output = try head.forward(text: states.tokenStates, textLengths: states.lengths, image: nil,
                                      hasImage: [Bool](repeating: false, count: tokenized.count))
        let decision = LabelDecision(labels: ["not_sarcastic", "sarcastic"], thresholds: ["sarcastic": Float(examples.threshold)])
        for (b, example) in examples.examples.enumerated() {
            let p = output.probabilities.data[(b * 2)..<(b * 2 + 2)]
            XCTAssertEqual(Double(p[p.startIndex + 1]), example.p_sarcastic, accuracy: 1e-4, example.text)
            XCTAssertEqual(decision.labels[decision.decide(p)], example.label, example.text)
        }
    }
}
