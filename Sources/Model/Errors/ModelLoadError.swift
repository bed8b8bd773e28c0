import Foundation

/// Errors from loading a model folder, a bundle or a weights file, each saying what to do.
///
/// Only loading throws these; a forward pass over loaded weights throws `InferenceError`.
public enum ModelLoadError: Error, Equatable, CustomStringConvertible {
    /// A file the model needs is absent.
    case missingFile(path: String, hint: String)
    /// `config.json` could not be decoded.
    case invalidConfig(path: String, detail: String)
    /// The config and the weights (or the vocabulary) disagree, or the config is unsupported.
    case inconsistent(detail: String)
    /// A problem with the weights file.
    case weights(SafeTensorsError)

    public var description: String {
        switch self {
        case let .missingFile(path, hint): return "\(path) does not exist: \(hint)"
        case let .invalidConfig(path, detail): return "cannot read \(path): \(detail)"
        case let .inconsistent(detail): return detail
        case let .weights(error): return error.description
        }
    }
}

extension ModelLoadError {
    /// The load error for anything thrown while building a model from a weights file: the
    /// weights' own errors and load errors pass through, anything else is an inconsistency
    /// reported with the file's path.
    static func loading(_ error: any Error, file: String) -> ModelLoadError {
        switch error {
        case let error as SafeTensorsError: return .weights(error)
        case let error as ModelLoadError: return error
        default: return .inconsistent(detail: "\(file): \(error)")
        }
    }
}
