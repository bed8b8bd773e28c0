import ArgumentParser
import Foundation
import Model

/// `postclassd classify FILE.jsonl`: labels the posts of a JSON-lines file the way the daemon
/// labels a topic, and writes one line per input line to stdout.
///
/// Valid posts are classified in batches of `--batch-size` consecutive posts (the daemon's batch
/// cut), so the numbers equal what the daemon produces for the same posts in the same batches.
struct ClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Label the posts of a JSON-lines file (one post per line, the topics' schema) and print the labelled records.",
        discussion: """
        Each input line is a post: {"id": ..., "text": ..., "image": base64 JPEG}. Each output line is \
        the daemon's output record for it, with "source": {"file", "line"}; a line the daemon would \
        dead-letter becomes {"id", "error": {"code", "message"}, "source"} instead. A summary goes to \
        stderr. Exit status 0 when the file was read to the end, whatever the posts held.
        """
    )

    @Argument(help: "The JSON-lines file, or - for standard input.")
    var file: String

    @Option(name: .long, help: "The model: a bundle folder, or a test model (passthrough, rules).")
    var model: String = DaemonSettings().model

    @Option(name: .long, help: "Posts per batch, as in the daemon.")
    var batchSize: Int = DaemonSettings().batchSize

    @Option(name: .long, help: "The encoders' matrix products (the text encoder's, EfficientNet's wider 1x1 convs): auto, fp32 or bf16, as the daemon's precision setting.")
    var precision: String = PrecisionSetting.auto.rawValue

    @Option(name: .long, help: "OpenBLAS threads (default: OpenBLAS's own choice).")
    var threads: Int?

    func validate() throws {
        guard (1...4096).contains(batchSize) else { throw ValidationError("--batch-size must be from 1 to 4096") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        _ = try resolvedPrecision()
    }

    /// `--precision`, checked against this CPU as the daemon checks its setting.
    private func resolvedPrecision() throws -> Precision {
        do { return try PrecisionSetting.parse(precision) } catch {
            throw ValidationError("--precision: \(error.text)")
        }
    }

    func run() throws {
        FreedMemory.keepForReuse()
        if let threads { BLASThreads.set(threads) }
        let precision = try resolvedPrecision()
        let classifier = try ClassifierFactory.make(model, precision: precision)
        guard let input = file == "-" ? FileHandle.standardInput : FileHandle(forReadingAtPath: file) else {
            throw ValidationError("cannot open \(file): check the path and its permissions")
        }
        let limits = DaemonSettings().inputLimits
        var pending: [(line: Int, raw: [UInt8], record: InputRecord)] = []
        var summary = (posts: 0, labelled: 0, failed: 0)
        let output = FileHandle.standardOutput

        func flush() {
            guard !pending.isEmpty else { return }
            var timings = StageTimings()
            let results = classifier.classify(pending.map(\.record.post), timings: &timings)
            var text: [UInt8] = []
            for (item, result) in zip(pending, results) {
                switch result {
                case let .success(prediction):
                    let record: [UInt8] = OutputRecord.value(
                        input: item.raw, kept: item.record.keptMembers, shadowed: item.record.shadowedMembers, prediction: prediction,
                        model: classifier.identity) { (json: inout JSONWriter) in writeSource(&json, line: item.line) }
                    text.append(contentsOf: record)
                    summary.labelled += 1
                case let .failure(failure):
                    text.append(contentsOf: errorLine(id: item.record.post.id, code: failure.code, message: failure.message, line: item.line))
                    summary.failed += 1
                }
                text.append(UInt8(ascii: "\n"))
            }
            output.write(Data(text))
            pending.removeAll(keepingCapacity: true)
        }

        var lineNumber = 0
        for raw in JSONLines(input) {
            lineNumber += 1
            if raw.allSatisfy(Self.isBlank) { continue }
            summary.posts += 1
            switch InputRecordDecoder.decode(raw, limits: limits) {
            case let .success(record):
                pending.append((lineNumber, raw, record))
                if pending.count == batchSize { flush() }
            case let .failure(reason):
                flush()  // keep output in input order
                var line = errorLine(id: nil, code: reason.code, message: reason.message, line: lineNumber)
                line.append(UInt8(ascii: "\n"))
                output.write(Data(line))
                summary.failed += 1
            }
        }
        flush()
        FileHandle.standardError.write(Data("classify: \(summary.posts) posts, \(summary.labelled) labelled, \(summary.failed) not (model \(classifier.identity.name) \(classifier.identity.version), inference kernels \(KernelBodies.widest), encoders \(KernelBodies.describe(precision))\(self.precision.lowercased() == PrecisionSetting.auto.rawValue ? ", auto: \(Precision.automaticReason)" : ""))\n".utf8))
    }

    private static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
    }

    private func writeSource(_ json: inout JSONWriter, line: Int) {
        json.raw("{\"file\":")
        json.string(file)
        json.raw(",\"line\":")
        json.number(Int64(line))
        json.raw("}")
    }

    private func errorLine(id: String?, code: String, message: String, line: Int) -> [UInt8] {
        var json = JSONWriter()
        json.raw("{\"id\":")
        if let id { json.string(id) } else { json.raw("null") }
        json.raw(",\"error\":{\"code\":")
        json.string(code)
        json.raw(",\"message\":")
        json.string(message)
        json.raw("},\"source\":")
        writeSource(&json, line: line)
        json.raw("}")
        return json.bytes
    }
}

/// The lines of a file as bytes (without the newline), read in large chunks so posts with
/// megabytes of base64 image do not cost a system call per byte.
struct JSONLines: Sequence, IteratorProtocol {
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var start = 0
    private var atEnd = false

    init(_ handle: FileHandle) { self.handle = handle }

    mutating func next() -> [UInt8]? {
        while true {
            if let newline = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(buffer[start..<newline])
                start = newline + 1
                return line
            }
            if atEnd {
                guard start < buffer.count else { return nil }
                let line = Array(buffer[start...])
                start = buffer.count
                return line
            }
            buffer.removeFirst(start)
            start = 0
            let chunk = handle.readData(ofLength: 1 << 20)
            if chunk.isEmpty { atEnd = true } else { buffer.append(contentsOf: chunk) }
        }
    }
}
