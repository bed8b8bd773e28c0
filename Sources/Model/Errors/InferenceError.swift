/// Errors from running loaded weights: every forward pass (encoders, heads, the bundle's
/// classifier) and every tensor operation throws this one type.
///
/// Kept apart from `ModelLoadError` because the two call for different responses: a load error
/// means the model folder must be fixed before the daemon can start, an inference error fails one
/// batch (the daemon reports its posts as `model_error`) and points at a bug or an input the
/// caller should have refused.
public enum InferenceError: Error, Equatable, CustomStringConvertible {
    /// Two operands (or an operand and a requested shape) have incompatible shapes.
    case shapeMismatch(expected: [Int], found: [Int], context: String)
    /// A post has more tokens than the text encoder has positions.
    case tooManyTokens(tokens: Int, positions: Int)

    public var description: String {
        switch self {
        case let .shapeMismatch(expected, found, context):
            return "\(context): expected shape \(expected), found \(found)"
        case let .tooManyTokens(tokens, positions):
            return "a post has \(tokens) tokens but the model has \(positions) positions; lower --max-length"
        }
    }
}

/// The name tensor operations' errors had before forward passes shared one error type; the same
/// type as `InferenceError`, kept so that code written against it still compiles.
public typealias TensorError = InferenceError
