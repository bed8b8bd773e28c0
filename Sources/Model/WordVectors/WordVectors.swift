import Foundation

/// A table of static word vectors (GloVe) in the folder format of tools/convert_glove.py:
///
/// - `vectors.f32`: `count x dims` little-endian float32, row-major, memory-mapped (GloVe 6B 50d
///   is 80 MB; only the rows that are looked up are ever read from disk);
/// - `words.txt`: one UTF-8 word per line, line i naming row i;
/// - `config.json`: `dims` and `count` (plus the source package and checksums, which
///   scripts/setup-models.sh verifies).
///
/// Lookups are exact on the word's bytes: callers pass the normalised word (AnANet: the BERT
/// normaliser's lower-cased, accent-stripped word). Immutable and thread-safe.
public struct WordVectors: Sendable {
    /// The width of one vector.
    public let dimensions: Int
    /// The number of words.
    public let count: Int
    /// The folder it was loaded from.
    public let directory: URL
    private let vectors: MappedFile
    private let index: WordIndex

    /// The fields of `config.json` the reader needs.
    private struct Config: Decodable {
        let dims: Int
        let count: Int
    }

    /// Loads the table in `directory`, checking the files against `config.json` and each other.
    public init(directory: URL) throws(ModelLoadError) {
        let configURL = directory.appendingPathComponent("config.json")
        let data: Data
        do { data = try Data(contentsOf: configURL) } catch {
            throw .missingFile(path: configURL.path, hint: "a word-vector folder needs config.json, vectors.f32 and words.txt (scripts/setup-models.sh converts GloVe into models/glove-6b-50d)")
        }
        let config: Config
        do { config = try JSONDecoder().decode(Config.self, from: data) } catch {
            throw .invalidConfig(path: configURL.path, detail: String(describing: error))
        }
        guard config.dims > 0, config.count >= 0 else {
            throw .invalidConfig(path: configURL.path, detail: "dims \(config.dims) and count \(config.count) must be positive")
        }
        let vectorsPath = directory.appendingPathComponent("vectors.f32").path
        let wordsPath = directory.appendingPathComponent("words.txt").path
        let vectors: MappedFile, words: MappedFile
        do {
            vectors = try MappedFile(path: vectorsPath)
            words = try MappedFile(path: wordsPath)
        } catch {
            throw .missingFile(path: error.path, hint: "cannot map it (\(error.reason)); run scripts/setup-models.sh")
        }
        let expectedBytes = config.count * config.dims * MemoryLayout<Float>.size
        guard vectors.size == expectedBytes else {
            throw .inconsistent(detail: "\(vectorsPath) has \(vectors.size) bytes but \(configURL.path) says \(config.count) x \(config.dims) float32 (\(expectedBytes) bytes); convert it again with scripts/setup-models.sh")
        }
        let index = WordIndex(words: words)
        guard index.count == config.count else {
            throw .inconsistent(detail: "\(wordsPath) has \(index.count) lines but \(configURL.path) says \(config.count) words")
        }
        self.dimensions = config.dims
        self.count = config.count
        self.directory = directory
        self.vectors = vectors
        self.index = index
    }

    /// The row of `word`, or `nil` when the table does not have it.
    public func row(of word: String) -> Int? {
        var word = word
        return word.withUTF8 { index.row(of: $0) }
    }

    /// The vector of `word`, or `nil` for a word the table lacks (AnANet then uses zeros).
    public func vector(for word: String) -> [Float]? {
        row(of: word).map { vector(atRow: $0) }
    }

    /// The vector on row `row` (`0..<count`).
    public func vector(atRow row: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: dimensions) { buffer, initialized in
            if let p = buffer.baseAddress { copyRow(row, into: p) }
            initialized = dimensions
        }
    }

    /// The word on row `row` (`0..<count`).
    public func word(atRow row: Int) -> String { index.word(atRow: row) }

    /// Writes the vector of `word` to `destination` (`dimensions` values), zeros for an unknown
    /// word; returns whether the word was found.
    @discardableResult
    func copyVector(for word: String, into destination: UnsafeMutablePointer<Float>) -> Bool {
        guard let row = row(of: word) else {
            destination.initialize(repeating: 0, count: dimensions)
            return false
        }
        copyRow(row, into: destination)
        return true
    }

    private func copyRow(_ row: Int, into destination: UnsafeMutablePointer<Float>) {
        guard let base = vectors.base, (0..<count).contains(row) else {
            destination.initialize(repeating: 0, count: dimensions)
            return
        }
        let start = base + row * dimensions * MemoryLayout<Float>.size
        for i in 0..<dimensions {
            // The file is little-endian whatever the host is.
            let bits = UInt32(littleEndian: start.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
            destination[i] = Float(bitPattern: bits)
        }
    }
}
