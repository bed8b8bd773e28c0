import Foundation

/// Builds a `BundleClassifier` from a bundle folder, checking everything before the daemon says
/// it is ready: every file the manifest names, every tensor each head needs (by name and shape),
/// and that each head's label count agrees with its classifier.
public enum ModelBundle {
    /// Loads the bundle in `folder`, with the text encoder's products in `precision` (the heads'
    /// adapted copies of its layers too) and the image encoder's where it has bf16 products
    /// (EfficientNet-Lite's wider 1x1 convs).
    public static func load(folder: URL, imageLimits: JPEGDecodeLimits = JPEGDecodeLimits(),
                            precision: Precision = .fp32) throws(ModelLoadError) -> BundleClassifier {
        let manifest = try BundleManifest.load(folder: folder)
        let manifestPath = folder.appendingPathComponent("manifest.json").path

        guard manifest.textEncoder.kind == "bert" else {
            throw .invalidConfig(path: manifestPath, detail: "text_encoder.kind '\(manifest.textEncoder.kind)' is not supported (supported: bert)")
        }
        let textDirectory = try component(manifest.textEncoder, in: folder, field: "text_encoder")
        let text = try BertTextEncoder(directory: textDirectory, precision: precision)
        let maxTokens = min(manifest.textEncoder.maxTokens ?? 77, text.encoder.maxPositions)

        var image: (any ImageEncoder)?
        if let entry = manifest.imageEncoder {
            image = try loadImageEncoder(directory: try component(entry, in: folder, field: "image_encoder"), precision: precision)
        }

        var vectors: WordVectors?
        if let entry = manifest.wordVectors {
            guard entry.kind == "glove" else {
                throw .invalidConfig(path: manifestPath, detail: "word_vectors.kind '\(entry.kind)' is not supported (supported: glove)")
            }
            vectors = try WordVectors(directory: try component(entry, in: folder, field: "word_vectors"))
        }

        let context = HeadContext(folder: folder, manifestPath: manifestPath, heads: manifest.heads, text: text,
                                  textDirectory: textDirectory, maxTokens: maxTokens, image: image, vectors: vectors)
        var heads: [any TaskHead] = []
        for entry in manifest.heads {
            heads.append(try HeadRegistry.make(entry, context: context))
        }
        return try BundleClassifier(manifest: manifest, text: text, maxTokens: maxTokens, image: image,
                                    imageLimits: imageLimits, heads: heads)
    }

    /// What every head builder may read.
    struct HeadContext {
        let folder: URL
        let manifestPath: String
        /// The manifest's heads, to name a head's field by its index in errors.
        let heads: [BundleManifest.Head]
        let text: BertTextEncoder
        /// The text encoder's checkpoint folder, for heads that rebuild its top layers with adapters.
        let textDirectory: URL
        let maxTokens: Int
        let image: (any ImageEncoder)?
        let vectors: WordVectors?

        /// `head 'task'`, as errors name a head.
        func name(_ head: BundleManifest.Head) -> String { "head '\(head.task)'" }

        /// The head's labels and thresholds.
        func decision(_ head: BundleManifest.Head) -> LabelDecision {
            LabelDecision(labels: head.labels, thresholds: head.thresholds ?? [:])
        }

        /// The head's `config`, decoded as `type`; `nil` when the manifest gives none.
        func config<Config: Decodable>(_ type: Config.Type, of head: BundleManifest.Head) throws(ModelLoadError) -> Config? {
            try head.config?.decode(type, path: manifestPath, field: "\(name(head)).config")
        }

        /// The head's weights file, opened.
        func weights(_ head: BundleManifest.Head) throws(ModelLoadError) -> SafeTensorsFile {
            let url = try file(head.weights, head: head)
            do { return try SafeTensorsFile(path: url.path) } catch { throw .weights(error) }
        }

        /// The text encoder with the head's `text_adapter` merged and the first layer it changes,
        /// or nil when the head has none.
        func adaptedText(_ head: BundleManifest.Head) throws(ModelLoadError) -> (encoder: BertEncoder, firstLayer: Int)? {
            guard let relative = head.textAdapter else { return nil }
            let url = try file(relative, head: head, field: "text_adapter")
            let adapter: BertAdapter
            do { adapter = try BertAdapter(file: try SafeTensorsFile(path: url.path), layerCount: text.encoder.layerCount) } catch let error as ModelLoadError {
                throw error
            } catch {
                throw .loading(error, file: url.path)
            }
            let checkpoint = try Checkpoint<BertConfig>(directory: textDirectory)
            return (try text.encoder.adapted(by: adapter, weights: checkpoint.weights), adapter.firstLayer)
        }

        func file(_ relative: String?, head: BundleManifest.Head, field: String = "weights") throws(ModelLoadError) -> URL {
            guard let relative else {
                throw .invalidConfig(path: manifestPath, detail: "head '\(head.task)' (\(head.kind)) needs a weights file: set its \"weights\"")
            }
            let url = folder.appendingPathComponent(relative)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw .missingFile(path: url.path, hint: "head '\(head.task)' names it in \(manifestPath); rebuild the bundle or fix the path")
            }
            let index = heads.firstIndex { $0.task == head.task } ?? 0
            try ModelBundle.checkInside(url, folder: folder, field: "heads[\(index)].\(field)", named: relative, manifestPath: manifestPath)
            return url
        }
    }

    /// A component's folder, which must exist.
    private static func component(_ entry: BundleManifest.Component, in folder: URL, field: String) throws(ModelLoadError) -> URL {
        let url = folder.appendingPathComponent(entry.path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .missingFile(path: url.path, hint: "\(field).path in \(folder.appendingPathComponent("manifest.json").path) names it; rebuild the bundle (scripts/setup-models.sh) or fix the path")
        }
        try checkInside(url, folder: folder, field: "\(field).path", named: entry.path,
                        manifestPath: folder.appendingPathComponent("manifest.json").path)
        return url
    }

    /// Refuses `url` (an existing file or folder the manifest's `field` names as `named`) when
    /// symbolic links take it, or for a folder anything in it, outside the bundle. The manifest
    /// check already refused `..` and absolute paths; this catches links that point elsewhere.
    ///
    /// "Inside" is the bundle folder or a sibling folder of it: scripts/setup-models.sh assembles
    /// `models/default` from links to `../all-MiniLM-L6-v2` and the other model folders, so the
    /// models directory as a whole is the trusted area. A bundle directly under `/` gets no
    /// siblings.
    static func checkInside(_ url: URL, folder: URL, field: String, named: String, manifestPath: String) throws(ModelLoadError) {
        guard let root = realPath(folder.path) else {
            throw .missingFile(path: folder.path, hint: "the bundle folder's real path cannot be resolved")
        }
        let parent = (root as NSString).deletingLastPathComponent
        let allowed = parent == "/" || parent.isEmpty ? [root] : [root, parent]
        func isInside(_ path: String) -> Bool {
            allowed.contains { path == $0 || path.hasPrefix($0 + "/") }
        }
        var candidates = [url.path]
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue,
           let entries = FileManager.default.enumerator(atPath: url.path) {
            // The folder's own files (vocab.txt, model.safetensors, ...) are opened by the encoders.
            for case let entry as String in entries { candidates.append(url.appendingPathComponent(entry).path) }
        }
        for candidate in candidates {
            guard let target = realPath(candidate) else {
                throw .missingFile(path: candidate, hint: "\(field) in \(manifestPath) names it, but its real path cannot be resolved (a dangling link?)")
            }
            guard isInside(target) else {
                let what = candidate == url.path ? "'\(named)'" : "'\(named)' holds \(candidate), which"
                throw .invalidConfig(path: manifestPath, detail: "\(field) \(what) resolves to \(target) through a symbolic link, outside the bundle folder \(root) and its models directory \(parent); copy the file into the bundle instead of linking to it")
            }
        }
    }

    /// The canonical absolute path (symbolic links, `.` and `..` resolved), nil when it does not exist.
    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
