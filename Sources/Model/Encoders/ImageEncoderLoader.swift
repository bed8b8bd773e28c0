import Foundation

/// Loads the image encoder in `directory`, choosing the implementation by `config.json`'s `"kind"`.
///
/// Kinds: `efficientnet_lite` (converted by tools/convert_efficientnet_lite0.py). `vit` is the
/// next one to come; until then it is reported as unsupported rather than unknown.
public func loadImageEncoder(directory: URL) throws(ModelLoadError) -> any ImageEncoder {
    let url = directory.appendingPathComponent("config.json")
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
        throw .missingFile(path: url.path, hint: "an image encoder folder needs config.json with a \"kind\" (scripts/setup-models.sh converts EfficientNet-Lite0 to models/efficientnet-lite0)")
    }
    struct Kind: Decodable { let kind: String }
    let kind: String
    do { kind = try JSONDecoder().decode(Kind.self, from: data).kind } catch {
        throw .invalidConfig(path: url.path, detail: "no \"kind\" string: \(error)")
    }
    switch kind {
    case "efficientnet_lite":
        return try EfficientNetLite(directory: directory)
    case "vit":
        throw .inconsistent(detail: "\(url.path): image encoder kind vit is not supported yet")
    default:
        throw .inconsistent(detail: "\(url.path): unknown image encoder kind '\(kind)' (supported: efficientnet_lite)")
    }
}
