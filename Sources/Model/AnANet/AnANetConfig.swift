import Foundation

/// The AnANet head's settings that are not in its weights (a bundle's `config.json` for the head).
///
/// ```json
/// {"lambda": 0.7, "eta": 1.3, "region_count": 49}
/// ```
public struct AnANetConfig: CheckpointConfig, Codable, Equatable {
    /// λ, the weight of the association net's logits (the paper's best: 0.7).
    public var lambda: Double
    /// η, the weight of the alignment net's logits (the paper's best: 1.3).
    public var eta: Double
    /// K, the number of image regions the head was trained on (EfficientNet-Lite0's 7x7 grid: 49).
    /// The weights cannot tell it: `alignment.classifier` reads N_max + K values, and N_max is
    /// that width minus K.
    public var regionCount: Int

    enum CodingKeys: String, CodingKey {
        case lambda
        case eta
        case regionCount = "region_count"
    }

    /// A config with the paper's λ and η unless given.
    public init(lambda: Double = 0.7, eta: Double = 1.3, regionCount: Int) {
        self.lambda = lambda
        self.eta = eta
        self.regionCount = regionCount
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        lambda = try c.decodeIfPresent(Double.self, forKey: .lambda) ?? 0.7
        eta = try c.decodeIfPresent(Double.self, forKey: .eta) ?? 1.3
        regionCount = try c.decode(Int.self, forKey: .regionCount)
    }

    // CheckpointConfig: what the load errors say (`Checkpoint`, `CheckpointConfig.load(from:)`).
    public static var missingConfigHint: String { "an AnANet head needs its config.json (lambda, eta, region_count)" }
    /// `nil`: a missing weights file is reported by the open error, as it always was for this head.
    public static func missingWeightsHint(_ name: String) -> String? { nil }
}
