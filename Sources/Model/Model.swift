/// The inference engine: tensors, encoders, task heads and model bundles.
public enum ModelInfo {
    /// The engine's own version, reported in `build_info` and output records.
    public static let engineVersion = "0.1.0"
}
