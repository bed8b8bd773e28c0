import ArgumentParser
import Foundation
import Model

/// `postclassd encode-image`: one JSON line per JPEG with its top-5 classes and pooled features.
///
/// A file that cannot be read or decoded gets an error line and the others go on; the exit status
/// says whether any failed, so scripts can tell a clean run without parsing every line.
struct EncodeImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode-image",
        abstract: "Encode JPEG files with an image encoder; write one JSON line per file.",
        discussion: """
        Output, in argument order: {"file": ..., "width": w, "height": h, "dct_scale": s, "top5": \
        [{"class": i, "name": ..., "probability": p}, ...], "pooled": [floats...]}. width and height \
        are the decoded picture's (upright, after libjpeg's 1/s DCT downscaling); top5 is the softmax \
        of the logits and is left out for encoders without classifier. A file that fails gives \
        {"file": ..., "error": {"code": ..., "message": ...}}, and the exit status is then 1. The \
        encoder folder needs config.json (its "kind" picks the encoder) and the weights; \
        scripts/setup-models.sh places EfficientNet-Lite0 in models/efficientnet-lite0.

        --regions-out FILE.safetensors also writes what the encoder gives a bundle's heads: \
        "regions" [N, K, d] (F32), the region grid of every file in argument order, and "decoded" \
        [N] (1 or 0): a file that failed keeps zero regions and 0. The training tools \
        (tools/train) read their image features from this file, so training and serving see the \
        same numbers.
        """
    )

    @Option(name: .long, help: "Image encoder folder (config.json with a \"kind\", model.safetensors, class names).")
    var encoder: String

    @Option(name: .long, help: "Images per forward pass.")
    var batchSize: Int = 16

    @Option(name: .long, help: "OpenBLAS threads (default: OpenBLAS's own choice).")
    var threads: Int?

    @Option(name: .long, help: "Also write every file's region grid ([N, K, d] \"regions\", [N] \"decoded\") to this safetensors file.")
    var regionsOut: String?

    @Argument(help: "JPEG files.")
    var files: [String]

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        guard !files.isEmpty else { throw ValidationError("give at least one JPEG file") }
    }

    func run() throws {
        FreedMemory.keepForReuse()
        if let threads { BLASThreads.set(threads) }
        let model = try loadImageEncoder(directory: URL(fileURLWithPath: encoder))
        let preprocessor = try ImagePreprocessor(config: model.preprocess)
        let jsonEncoder = JSONEncoder()
        jsonEncoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var failed = 0
        var grid = regionsOut.map { _ in RegionGrid(files: files.count) }
        for start in stride(from: 0, to: files.count, by: batchSize) {
            let (lines, regions) = try encodeBatch(Array(files[start..<min(start + batchSize, files.count)]),
                                                   model: model, preprocessor: preprocessor)
            failed += lines.filter { $0.error != nil }.count
            if let regions { try grid?.add(regions.encoding, rows: regions.rows.map { start + $0 }) }
            var out = Data()
            for line in lines {
                do { out += try jsonEncoder.encode(line) } catch {
                    // JSON has no NaN or infinity; they only come from broken weights.
                    throw EncodeImageError.nonFiniteOutput(encoder: encoder)
                }
                out += Data("\n".utf8)
            }
            FileHandle.standardOutput.write(out)
        }
        if let regionsOut, let grid { try grid.write(to: regionsOut) }
        if failed > 0 { throw ExitCode(1) }
    }

    /// Decodes and preprocesses each file, encodes the ones that decoded in one forward pass.
    /// Returns the lines and, when any file decoded, the encoding with the batch index of each of its rows.
    private func encodeBatch(_ paths: [String], model: any ImageEncoder,
                             preprocessor: ImagePreprocessor) throws -> ([ImageLine], (encoding: ImageEncoding, rows: [Int])?) {
        let decoder = JPEGDecoder()
        var lines: [ImageLine] = []
        var pixels: [Float] = []
        var encoded: [Int] = []
        for path in paths {
            do throws(JPEGError) {
                let decoded = try decoder.decodeFile(atPath: path, downscale: model.preprocess.jpegDownscale)
                pixels += preprocessor(decoded.image)
                encoded.append(lines.count)
                lines.append(ImageLine(file: path, width: decoded.image.width, height: decoded.image.height,
                                       dctScale: decoded.scaleDenominator))
            } catch {
                lines.append(ImageLine(file: path, error: .init(code: error.code, message: error.description)))
            }
        }
        guard !encoded.isEmpty else { return (lines, nil) }
        let result = try model.encode(pixels, batch: encoded.count)
        let d = result.pooled.lastDimension
        var probabilities = result.logits
        if var p = probabilities { Softmax.apply(&p); probabilities = p }
        for (row, i) in encoded.enumerated() {
            lines[i].pooled = Array(result.pooled.data[(row * d)..<((row + 1) * d)])
            if let p = probabilities, let names = model.classNames {
                let classes = p.lastDimension
                let values = p.data[(row * classes)..<((row + 1) * classes)]
                let best = values.indices.sorted { values[$0] > values[$1] }.prefix(5)
                lines[i].top5 = best.map { j in
                    ImageLine.Class(class: j - row * classes, name: names[j - row * classes], probability: values[j])
                }
            }
        }
        return (lines, (result, encoded))
    }
}

/// The `--regions-out` file being filled: every file's `[K, d]` region grid at its argument index.
struct RegionGrid {
    let files: Int
    private(set) var regionShape: [Int]?
    private(set) var values: [Float] = []
    private(set) var decoded: [Float]

    init(files: Int) {
        self.files = files
        decoded = [Float](repeating: 0, count: files)
    }

    /// Puts row r of `encoding.regions` (`[B, K, d]`) at file index `rows[r]`.
    mutating func add(_ encoding: ImageEncoding, rows: [Int]) throws(EncodeImageError) {
        let regions = encoding.regions
        guard regions.rank == 3, regions.shape[0] == rows.count else {
            throw .unexpectedRegions(shape: regions.shape)
        }
        let shape = Array(regions.shape.dropFirst())
        if regionShape == nil {
            regionShape = shape
            values = [Float](repeating: 0, count: files * shape[0] * shape[1])
        }
        guard shape == regionShape else { throw .unexpectedRegions(shape: regions.shape) }
        let size = shape[0] * shape[1]
        for (r, file) in rows.enumerated() {
            values.replaceSubrange((file * size)..<((file + 1) * size), with: regions.data[(r * size)..<((r + 1) * size)])
            decoded[file] = 1
        }
    }

    /// Writes `regions` `[N, K, d]` and `decoded` `[N]`; with no decoded file, K = d = 0.
    func write(to path: String) throws {
        var writer = SafeTensorsWriter()
        let shape = regionShape ?? [0, 0]
        do {
            writer.add("regions", try Tensor(shape: [files] + shape, data: values))
            writer.add("decoded", try Tensor(shape: [files], data: decoded))
            try writer.write(to: URL(fileURLWithPath: path))
        } catch {
            throw EncodeImageError.cannotWrite(path: path, reason: "\(error)")
        }
    }
}

/// One output line of `encode-image`.
struct ImageLine: Encodable {
    struct Class: Encodable {
        let `class`: Int
        let name: String
        let probability: Float
    }

    struct Failure: Encodable {
        let code: String
        let message: String
    }

    var file: String
    var width: Int?
    var height: Int?
    var dctScale: Int?
    var top5: [Class]?
    var pooled: [Float]?
    var error: Failure?

    enum CodingKeys: String, CodingKey {
        case file, width, height, top5, pooled, error, dctScale = "dct_scale"
    }
}

/// Errors of `encode-image` beyond those of loading the model.
enum EncodeImageError: Error, CustomStringConvertible {
    case nonFiniteOutput(encoder: String)
    case unexpectedRegions(shape: [Int])
    case cannotWrite(path: String, reason: String)

    var description: String {
        switch self {
        case let .nonFiniteOutput(encoder):
            return "the encoder in \(encoder) produced NaN or infinity; check its weights (re-run scripts/setup-models.sh)"
        case let .unexpectedRegions(shape):
            return "the encoder gave regions of shape \(shape), not [B, K, d] with one K and d for every batch; this is a bug in the encoder, please report it"
        case let .cannotWrite(path, reason):
            return "cannot write --regions-out \(path): \(reason); check that its folder exists and is writable"
        }
    }
}
