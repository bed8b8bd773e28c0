import Foundation

/// The image encoders a folder's `config.json` can name, by its `kind` (or, for a Hugging Face
/// folder, its `model_type`), each with the loader of its folder.
///
/// One table rather than a switch, in the manner of mlx-swift-examples' `LLMModelFactory`: adding
/// an architecture is one entry here, and the "supported" list in the error comes from the table.
public enum ImageEncoderRegistry {
    /// One kind and how to load a folder of it.
    public struct Entry: Sendable {
        /// The `kind` (or `model_type`) in `config.json`.
        public let kind: String
        /// Loads the encoder from a folder of this kind, with its products in the given precision
        /// where the architecture has bf16 products (EfficientNet-Lite's 1x1 convs; ViT runs fp32).
        public let load: @Sendable (URL, Precision) throws(ModelLoadError) -> any ImageEncoder
    }

    /// Every kind this build loads: `efficientnet_lite` (converted by
    /// tools/convert_efficientnet_lite0.py) and `vit` (a Hugging Face ViTModel folder).
    public static let entries: [Entry] = [
        Entry(kind: "efficientnet_lite") { directory, precision throws(ModelLoadError) in
            try EfficientNetLite(directory: directory, precision: precision)
        },
        // bf16 would need its own accuracy guard on ViT: fp32 whatever the setting.
        Entry(kind: "vit") { directory, _ throws(ModelLoadError) in try ViTEncoder(directory: directory) },
    ]

    /// The kinds, as the errors list them.
    public static var kinds: [String] { entries.map(\.kind) }

    /// Loads the image encoder that the `config.json` in `directory` names, in `precision` where it
    /// has bf16 products.
    public static func load(directory: URL, precision: Precision = .fp32) throws(ModelLoadError) -> any ImageEncoder {
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
        guard let entry = entries.first(where: { $0.kind == kind }) else {
            throw .invalidConfig(path: configURL.path, detail: "image encoder kind '\(kind)' is not supported (supported: \(kinds.joined(separator: ", ")))")
        }
        return try entry.load(directory, precision)
    }
}

/// Loads the image encoder a folder's config.json names by its `kind` (see `ImageEncoderRegistry`).
public func loadImageEncoder(directory: URL, precision: Precision = .fp32) throws(ModelLoadError) -> any ImageEncoder {
    try ImageEncoderRegistry.load(directory: directory, precision: precision)
}
