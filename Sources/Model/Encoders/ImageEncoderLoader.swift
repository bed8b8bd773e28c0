import Foundation

/// Loads the image encoder a folder's config.json names by its `kind`.
public func loadImageEncoder(directory: URL) throws(ModelLoadError) -> any ImageEncoder {
    let configURL = directory.appendingPathComponent("config.json")
    struct Kind: Decodable { var kind: String?; var model_type: String? }
    let kind: String
    do {
        let decoded = try JSONDecoder().decode(Kind.self, from: Data(contentsOf: configURL))
        kind = decoded.kind ?? decoded.model_type ?? ""
    } catch {
        throw .invalidConfig(path: configURL.path, detail: "cannot read the encoder's kind: \(error)")
    }
    switch kind {
    case "vit": return try ViTEncoder(directory: directory)
    default:
        throw .invalidConfig(path: configURL.path, detail: "image encoder kind '\(kind)' is not supported (supported: efficientnet_lite, vit)")
    }
}
