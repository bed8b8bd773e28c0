/// A scoped view of a checkpoint's tensors, in the manner of candle's `VarBuilder`: a model's
/// loader asks for `encoder.layer.3.output.dense` as `vb.pp("encoder").pp("layer.3").linear("output.dense", …)`,
/// and the reader owns what every loader used to repeat:
///
/// - prefixes: `pp(_:)` scopes, `optionalScope(_:probe:)` for checkpoints saved with or without a
///   model prefix (`bert.`, `vit.`);
/// - shape checks: every read names its expected shape, -1 matching any extent;
/// - LayerNorm spellings: `weight`/`bias`, or `gamma`/`beta` in old checkpoints;
/// - layer counting against the config, and the names a scope may hold;
/// - the errors: every failure is a `ModelLoadError` naming the file and the full tensor name.
///
/// Reading converts F16 and BF16 to `Float` (see `SafeTensorsFile`). The reader is a value; scoping
/// makes a new one and never changes the file.
public struct WeightReader: Sendable {
    /// The file the tensors come from.
    public let file: SafeTensorsFile
    /// What every name asked of this reader is prefixed with (`""` or ending in `.`).
    public let prefix: String
    /// When set, a linear layer whose weight has the wrong extents is reported as an
    /// inconsistency carrying this advice, rather than as the file's shape error (see `explainingShapes(_:)`).
    let shapeAdvice: String?

    /// A reader of `file` at its root.
    public init(file: SafeTensorsFile) {
        self.init(file: file, prefix: "", shapeAdvice: nil)
    }

    private init(file: SafeTensorsFile, prefix: String, shapeAdvice: String?) {
        self.file = file
        self.prefix = prefix
        self.shapeAdvice = shapeAdvice
    }

    /// The reader one level down: `pp("encoder").pp("layer.3")` reads `encoder.layer.3.*`.
    public func pp(_ component: String) -> WeightReader {
        WeightReader(file: file, prefix: prefix + component + ".", shapeAdvice: shapeAdvice)
    }

    /// `pp(component)` when the file holds `component.probe` (a checkpoint saved with the model's
    /// prefix, like `bert.embeddings.…`), otherwise this reader.
    public func optionalScope(_ component: String, probe: String) -> WeightReader {
        contains(component + "." + probe) ? pp(component) : self
    }

    /// The same reader, reporting linear layers of the wrong extents as
    /// `ModelLoadError.inconsistent` with `advice` appended: for heads whose widths are all
    /// implied by one another, where "expected [512, 768]" alone does not say what to fix.
    public func explainingShapes(_ advice: String) -> WeightReader {
        WeightReader(file: file, prefix: prefix, shapeAdvice: advice)
    }

    /// The full name of `name` in the file.
    public func fullName(_ name: String) -> String { prefix + name }

    /// Whether the file holds tensor `name` under this scope.
    public func contains(_ name: String) -> Bool { file.contains(fullName(name)) }

    /// Whether the file holds any tensor under `component.` of this scope (or, for `nil`, under this scope at all).
    public func hasTensors(under component: String? = nil) -> Bool {
        let start = component.map { fullName($0) + "." } ?? prefix
        return file.entries.keys.contains { $0.hasPrefix(start) }
    }

    /// Tensor `name`, which must have `shape` (-1 matches any extent).
    public func tensor(_ name: String, shape: [Int]) throws(ModelLoadError) -> Tensor {
        do { return try file.tensor(fullName(name), expectedShape: shape) } catch { throw .weights(error) }
    }

    /// Tensor `name` as a vector of `count` values (any count for `nil`).
    public func vector(_ name: String, count: Int?) throws(ModelLoadError) -> [Float] {
        do { return try file.vector(fullName(name), count: count) } catch { throw .weights(error) }
    }

    /// A linear layer: `name.weight` of `shape` (`[out, in]`, -1 for any) and, with `bias`,
    /// `name.bias` of `out` values.
    public func linear(_ name: String, shape: [Int], bias: Bool = true) throws(ModelLoadError) -> Linear {
        let weightName = name + ".weight"
        let weight: Tensor
        if let shapeAdvice, shape.count == 2 {
            weight = try tensor(weightName, shape: [-1, -1])
            let expected = zip(shape, weight.shape).map { $0 == -1 ? $1 : $0 }
            guard weight.shape == expected else {
                throw .inconsistent(detail: "tensor '\(fullName(weightName))' in \(file.path) has shape \(weight.shape), expected \(expected): \(shapeAdvice)")
            }
        } else {
            weight = try tensor(weightName, shape: shape)
        }
        let biasValues = bias ? try vector(name + ".bias", count: weight.shape[0]) : nil
        do { return try Linear(weight: weight, bias: biasValues) } catch {
            // Unreachable after the checks above; reported against the layer.
            throw .inconsistent(detail: "\(fullName(name)) in \(file.path): \(error)")
        }
    }

    /// A LayerNorm of `width` values: `name.weight`/`name.bias`, or `name.gamma`/`name.beta` in
    /// checkpoints saved before PyTorch renamed them.
    public func layerNorm(_ name: String, width: Int, eps: Float) throws(ModelLoadError) -> LayerNorm {
        let old = !contains(name + ".weight") && contains(name + ".gamma")
        let gamma = try vector(name + (old ? ".gamma" : ".weight"), count: width)
        let beta = try vector(name + (old ? ".beta" : ".bias"), count: width)
        do { return try LayerNorm(gamma: gamma, beta: beta, eps: eps) } catch {
            throw .inconsistent(detail: "\(fullName(name)) in \(file.path): \(error)")
        }
    }

    /// How many numbered children `0, 1, 2, …` this scope holds, counting while child `i` has the
    /// tensor `i.marker` (or, for `nil`, any tensor under `i.`). Counting stops at the first gap.
    public func numberedCount(marker: String? = nil) -> Int {
        var count = 0
        while marker.map({ contains("\(count).\($0)") }) ?? hasTensors(under: "\(count)") { count += 1 }
        return count
    }

    /// `numberedCount(marker:)`, which must equal what the config says in `field`: a config that
    /// disagrees with the file is reported rather than half-loaded.
    public func layerCount(marker: String, configSays expected: Int, field: String) throws(ModelLoadError) -> Int {
        let found = numberedCount(marker: marker)
        guard found == expected else {
            throw .inconsistent(detail: "config.json says \(field) \(expected) but \(file.path) has \(found) layers")
        }
        return found
    }

    /// The first tensor under this scope that is not `numbered.i.<name>` with `i < count` and
    /// `<name>` in `allowed`; `nil` when there is none. For checkpoints whose layers are made of
    /// optional parts: a renamed or gapped tensor would otherwise leave a part silently missing.
    public func firstUnexpectedName(numbered: String, count: Int, allowed: Set<String>) -> String? {
        let layers = fullName(numbered) + "."
        return file.names.first { name in
            guard name.hasPrefix(prefix) else { return false }
            guard name.hasPrefix(layers) else { return true }
            let parts = name.dropFirst(layers.count).split(separator: ".", maxSplits: 1)
            let known = parts.count == 2 && Int(parts[0]).map { $0 >= 0 && $0 < count } == true
                && allowed.contains(String(parts[1]))
            return !known
        }
    }
}
