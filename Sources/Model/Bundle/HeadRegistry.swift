/// The task-head kinds a manifest's `heads[].kind` can name, each with the builder that makes the
/// head from its manifest entry.
///
/// One table rather than a switch, in the manner of mlx-swift-examples' `LLMModelFactory`: adding
/// a head kind is one entry here (and its builder beside its `TaskHead`), and the "known kinds" of
/// the error come from the table, so they cannot fall out of date.
enum HeadRegistry {
    /// One kind and how to build it.
    struct Entry: Sendable {
        /// The manifest's `kind`.
        let kind: String
        /// Builds the head of one manifest entry, checking it against the bundle's encoders.
        let build: @Sendable (BundleManifest.Head, ModelBundle.HeadContext) throws(ModelLoadError) -> any TaskHead
    }

    /// Every kind this build knows.
    static let entries: [Entry] = [
        Entry(kind: "clfa") { entry, context throws(ModelLoadError) in try CLFATaskHead.make(entry, context: context) },
        Entry(kind: "ananet") { entry, context throws(ModelLoadError) in try AnANetTaskHead.make(entry, context: context) },
        Entry(kind: "zero_shot_imagenet") { entry, context throws(ModelLoadError) in
            try ZeroShotCorrelationHead.make(entry, context: context)
        },
    ]

    /// The kinds, in the order the errors list them.
    static var kinds: [String] { entries.map(\.kind) }

    /// The head of manifest entry `entry`.
    static func make(_ entry: BundleManifest.Head, context: ModelBundle.HeadContext) throws(ModelLoadError) -> any TaskHead {
        guard let kind = entries.first(where: { $0.kind == entry.kind }) else {
            throw .invalidConfig(path: context.manifestPath, detail: "\(context.name(entry)) has kind '\(entry.kind)', which this build does not know (known: \(kinds.joined(separator: ", ")))")
        }
        return try kind.build(entry, context)
    }
}
