import Foundation

/// Loads the image encoder a folder's config.json names by its `kind`.
///
/// Kinds: `efficientnet_lite` (converted by tools/convert_efficientnet_lite0.py) and `vit` (a Hugging
/// Face ViTModel folder, whose config.json says `model_type: vit`).
public func loadImageEncoder(directory: URL) throws(ModelLoadError) -> any ImageEncoder {
    let configURL = directory.appendingPathComponent("config.json")
    guard FileManager.default.fileExists(atPath: configURL.path) else {
        throw .missingFile(path: configURL.path, hint: "an image encoder folder needs config.json with a \"kind\" (scripts/setup-models.sh converts EfficientNet-Lite0 to models/efficientnet-lite0)")
    }
    struct Kind: Decodable { var kind: String?; var model_type: String? }
    let kind: String
    do {
        let decoded = try JSONDecoder().decode(Kind.self, from: Data(contentsOf: configURL))
        kind = decoded.kind ?? decoded.model_type ?? ""
    } catch {
        throw .invalidConfig(path: configURL.path, detail: "cannot read the encoder's kind: \(error)")
    }
    switch kind {
    case "efficientnet_lite": return try EfficientNetLite(directory: directory)
    case "vit": return try ViTEncoder(directory: directory)
    default:
        throw .invalidConfig(path: configURL.path, detail: "image encoder kind '\(kind)' is not supported (supported: efficientnet_lite, vit)")
    }
}
