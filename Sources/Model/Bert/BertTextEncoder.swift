import Foundation

/// Tokenizer and BERT encoder of one checkpoint folder: text in, ids and sentence vectors out.
public struct BertTextEncoder: Sendable {
    /// One post's result.
    public struct Encoded: Sendable, Equatable {
        /// The ids fed to the encoder, `[CLS] … [SEP]`.
        public let tokens: [Int]
        /// The masked mean of the token states (not L2-normalised).
        public let embedding: [Float]
    }

    public let tokenizer: WordPieceTokenizer
    public let encoder: BertEncoder

    /// Loads `vocab.txt`, `config.json` and `model.safetensors` from `directory`, with the
    /// encoder's products in `precision`.
    public init(directory: URL, precision: Precision = .fp32) throws(ModelLoadError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .missingFile(path: directory.path, hint: "pass a model folder with config.json, model.safetensors and vocab.txt (scripts/setup-models.sh makes models/all-MiniLM-L6-v2)")
        }
        let vocab = directory.appendingPathComponent("vocab.txt")
        guard FileManager.default.fileExists(atPath: vocab.path) else {
            throw .missingFile(path: vocab.path, hint: "model folder \(directory.path) has no vocab.txt; run scripts/setup-models.sh")
        }
        do { tokenizer = try WordPieceTokenizer(vocabularyURL: vocab) } catch {
            throw .inconsistent(detail: error.description)
        }
        encoder = try BertEncoder(directory: directory, precision: precision)
        guard tokenizer.vocabularySize <= encoder.wordEmbeddings.rowCount else {
            throw .inconsistent(detail: "vocab.txt has \(tokenizer.vocabularySize) tokens but the word embeddings only \(encoder.wordEmbeddings.rowCount) rows")
        }
    }

    /// Encodes a batch of texts, truncated to `maxLength` ids each (capped at the model's positions),
    /// with the forward pass split into `threads` slices (`BertEncoder.forward`).
    public func encode(_ texts: [String], maxLength: Int, threads: Int = 1) throws(InferenceError) -> [Encoded] {
        let limit = min(maxLength, encoder.maxPositions)
        let batch = tokenizer.encode(batch: texts, maxLength: limit)
        guard !texts.isEmpty else { return [] }
        let output = try encoder.forward(batch.ids, threads: threads)
        let d = encoder.hiddenSize
        return batch.ids.enumerated().map { b, ids in
            Encoded(tokens: ids, embedding: Array(output.sentenceVectors.data[(b * d)..<((b + 1) * d)]))
        }
    }
}
