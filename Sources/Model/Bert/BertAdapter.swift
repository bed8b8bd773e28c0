import Foundation

/// Low-rank adapters (LoRA) that a fine-tuned head carries for the text encoder's top layers.
///
/// A trained adapter changes weight `W [out, in]` to `W + B·A`, `A [r, in]`, `B [out, r]` (the
/// training scale already folded into `B`). The file names each factor after the weight it
/// changes: `encoder.layer.5.attention.self.query.weight.lora_A` and `….lora_B`. Heads share the
/// bundle's encoder up to the first adapted layer and run their own copy of the layers from there,
/// so an adapter on the top two of six layers costs a third of a pass, and the file stays small
/// (a few hundred kilobytes) where the changed layers themselves would be megabytes.
///
/// `tools/train/train_sarcasm.py` writes these files (`postclassd_train/lora.py`).
public struct BertAdapter: Sendable {
    /// One weight's change, as its two factors.
    struct Delta: Sendable {
        let a: Tensor
        let b: Tensor

        /// `B·A`, the `[out, in]` change (once, at load: plain loops are fast enough for rank r).
        func product() -> Tensor {
            let r = a.shape[0], inputs = a.shape[1], outputs = b.shape[0]
            var out = Tensor(zeros: [outputs, inputs])
            for o in 0..<outputs {
                for k in 0..<r {
                    let scale = b.data[o * r + k]
                    for i in 0..<inputs { out.data[o * inputs + i] += scale * a.data[k * inputs + i] }
                }
            }
            return out
        }
    }

    /// The weights' changes, by the checkpoint name of the weight.
    let deltas: [String: Delta]
    /// The lowest layer index with an adapted weight: the layers from here on are the head's own.
    public let firstLayer: Int
    /// Where the adapters came from, for errors.
    public let path: String

    /// The layer products an adapter may change, by their name under `encoder.layer.{i}.`.
    static let targets: Set<String> = ["attention.self.query", "attention.self.key", "attention.self.value",
                                       "attention.output.dense", "intermediate.dense", "output.dense"]

    /// Reads and checks the adapters in `file` against an encoder of `layerCount` layers.
    public init(file: SafeTensorsFile, layerCount: Int) throws(ModelLoadError) {
        path = file.path
        func bad(_ detail: String) -> ModelLoadError {
            .inconsistent(detail: "text adapter \(file.path): \(detail); export it again with tools/train/train_sarcasm.py")
        }
        var factors: [String: (a: Tensor?, b: Tensor?)] = [:]
        var lowest = Int.max
        for name in file.names {
            let part = name.hasSuffix(".lora_A") ? "A" : name.hasSuffix(".lora_B") ? "B" : nil
            guard let part else { throw bad("tensor '\(name)' is not a LoRA factor (<weight>.lora_A or <weight>.lora_B)") }
            let weight = String(name.dropLast(".lora_A".count))
            let pieces = weight.split(separator: ".", maxSplits: 3).map(String.init)
            guard pieces.count == 4, pieces[0] == "encoder", pieces[1] == "layer", let layer = Int(pieces[2]),
                  weight.hasSuffix(".weight"), Self.targets.contains(String(pieces[3].dropLast(".weight".count))) else {
                throw bad("tensor '\(name)' does not name a layer product (encoder.layer.{i}.{\(Self.targets.sorted().joined(separator: ","))}.weight)")
            }
            guard layer >= 0, layer < layerCount else {
                throw bad("tensor '\(name)' adapts layer \(layer), but the text encoder has \(layerCount) layers")
            }
            lowest = min(lowest, layer)
            let tensor: Tensor
            do { tensor = try file.tensor(name, expectedShape: [-1, -1]) } catch { throw .weights(error) }
            if part == "A" { factors[weight, default: (nil, nil)].a = tensor } else { factors[weight, default: (nil, nil)].b = tensor }
        }
        guard lowest != Int.max else { throw bad("it holds no adapters") }
        var deltas: [String: Delta] = [:]
        for (weight, pair) in factors {
            guard let a = pair.a, let b = pair.b else {
                throw bad("'\(weight)' has only one of lora_A and lora_B")
            }
            guard a.shape[0] == b.shape[1] else {
                throw bad("'\(weight)': lora_A is \(a.shape) and lora_B \(b.shape), whose ranks differ")
            }
            deltas[weight] = Delta(a: a, b: b)
        }
        self.deltas = deltas
        firstLayer = lowest
    }

    /// `linear` (the weight named `weight` in the checkpoint) with its adapter merged, or unchanged.
    func merged(_ linear: Linear, weight: String) throws(ModelLoadError) -> Linear {
        guard let delta = deltas[weight] else { return linear }
        guard delta.b.shape[0] == linear.outFeatures, delta.a.shape[1] == linear.inFeatures else {
            throw .inconsistent(detail: "text adapter \(path): '\(weight)' changes a [\(delta.b.shape[0]), \(delta.a.shape[1])] weight, but the encoder's is [\(linear.outFeatures), \(linear.inFeatures)]; the adapter was trained for another encoder")
        }
        var weightTensor = linear.weight
        let change = delta.product()
        for i in weightTensor.data.indices { weightTensor.data[i] += change.data[i] }
        do { return try Linear(weight: weightTensor, bias: linear.bias) } catch {
            throw .inconsistent(detail: "text adapter \(path): merging '\(weight)': \(error)")
        }
    }
}
