import Foundation

/// The `config.json` of one architecture's checkpoint folder: how it is read, and what the load
/// errors say when it or the weights are missing.
public protocol CheckpointConfig: Decodable, Sendable {
    /// The hint of the error for a missing `config.json`.
    static var missingConfigHint: String { get }
    /// The hint of the error for a missing weights file `name`; `nil` opens it regardless, so that
    /// the file's own open error is reported.
    static func missingWeightsHint(_ name: String) -> String?
    /// Words appended, in parentheses, to a decoding error (the values a field may take).
    static var decodingHint: String? { get }
    /// A problem that decoding does not catch (a range), reported as an invalid config.
    var problem: String? { get }
}

extension CheckpointConfig {
    public static var decodingHint: String? { nil }
    public var problem: String? { nil }

    /// Reads and decodes the config at `url`.
    public static func load(from url: URL) throws(ModelLoadError) -> Self {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw .missingFile(path: url.path, hint: missingConfigHint)
        }
        let config: Self
        do { config = try JSONDecoder().decode(Self.self, from: data) } catch {
            throw .invalidConfig(path: url.path, detail: "\(error)" + (decodingHint.map { " (\($0))" } ?? ""))
        }
        if let problem = config.problem { throw .invalidConfig(path: url.path, detail: problem) }
        return config
    }
}

/// A checkpoint folder opened: its `config.json` decoded and its weights mapped.
///
/// Every architecture's `init(directory:)` starts here, so that the files, their order and the
/// errors for missing or broken ones are the same everywhere:
///
/// ```swift
/// let checkpoint = try Checkpoint<BertConfig>(directory: folder)
/// try self.init(weights: checkpoint.weights, config: checkpoint.config)
/// ```
public struct Checkpoint<Config: CheckpointConfig>: Sendable {
    /// The folder.
    public let directory: URL
    /// The decoded `config.json`.
    public let config: Config
    /// The mapped weights file.
    public let weights: SafeTensorsFile

    /// Opens `config.json` and `weightsFile` in `directory`.
    public init(directory: URL, weightsFile: String = "model.safetensors") throws(ModelLoadError) {
        self.directory = directory
        config = try Config.load(from: directory.appendingPathComponent("config.json"))
        let url = directory.appendingPathComponent(weightsFile)
        if let hint = Config.missingWeightsHint(weightsFile), !FileManager.default.fileExists(atPath: url.path) {
            throw .missingFile(path: url.path, hint: hint)
        }
        do { weights = try SafeTensorsFile(path: url.path) } catch { throw .weights(error) }
    }

    /// A reader of the weights at their root.
    public var reader: WeightReader { WeightReader(file: weights) }
}
