import ArgumentParser
import Foundation
import Model

/// `postclassd encode-text`: one JSON line of ids and sentence vector per line of text on stdin.
///
/// The embedding is the masked mean of the encoder's last hidden states over `[CLS] … [SEP]`,
/// NOT L2-normalised (sentence-transformers divides it by its norm afterwards; do that yourself
/// for cosine similarity on unit vectors).
struct EncodeTextCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode-text",
        abstract: "Encode one text per stdin line with a BERT-family encoder; write one JSON line per input.",
        discussion: """
        Output, in input order: {"tokens": [ids...], "embedding": [floats...]}. The embedding is the \
        masked mean of the last hidden states (not L2-normalised). The encoder folder needs \
        config.json, model.safetensors and vocab.txt; scripts/setup-models.sh places \
        all-MiniLM-L6-v2 in models/all-MiniLM-L6-v2.
        """
    )

    @Option(name: .long, help: "Folder with config.json, model.safetensors and vocab.txt.")
    var encoder: String

    @Option(name: .long, help: "Texts per forward pass (padded to the longest in the batch).")
    var batchSize: Int = 32

    @Option(name: .long, help: "Maximum ids per text, [CLS] and [SEP] included (longer texts are truncated).")
    var maxLength: Int = 128

    @Option(name: .long, help: "Threads for each batch: the encoder splits every product and kernel into this many slices, each sgemm on one OpenBLAS thread (default: OpenBLAS's own threads).")
    var threads: Int?

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        guard maxLength >= 2 else { throw ValidationError("--max-length must be at least 2 ([CLS] and [SEP])") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        FreedMemory.keepForReuse()
        // With --threads the encoder's own slices use the cores, so OpenBLAS must not add threads.
        if threads != nil { BLASThreads.set(1) }
        let slices = threads ?? 1
        let model = try BertTextEncoder(directory: URL(fileURLWithPath: encoder))
        var batch: [String] = []
        batch.reserveCapacity(batchSize)
        while let line = readLine(strippingNewline: true) {
            batch.append(line)
            if batch.count == batchSize {
                try write(model.encode(batch, maxLength: maxLength, threads: slices))
                batch.removeAll(keepingCapacity: true)
            }
        }
        if !batch.isEmpty { try write(model.encode(batch, maxLength: maxLength, threads: slices)) }
    }

    private func write(_ results: [BertTextEncoder.Encoded]) throws {
        var out = ""
        for result in results {
            out += "{\"tokens\":["
            out += result.tokens.map(String.init).joined(separator: ",")
            out += "],\"embedding\":["
            for (i, value) in result.embedding.enumerated() {
                // JSON has no NaN or infinity; they only come from broken weights.
                guard value.isFinite else { throw EncodeTextError.nonFiniteOutput(encoder: encoder) }
                if i > 0 { out += "," }
                out += value.description
            }
            out += "]}\n"
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}

/// Errors of `encode-text` beyond those of loading the model.
enum EncodeTextError: Error, CustomStringConvertible {
    case nonFiniteOutput(encoder: String)

    var description: String {
        switch self {
        case let .nonFiniteOutput(encoder):
            return "the encoder in \(encoder) produced NaN or infinity; check its weights (re-run scripts/setup-models.sh)"
        }
    }
}
