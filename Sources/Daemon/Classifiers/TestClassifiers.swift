import Foundation
import Model

/// `--model passthrough`: labels nothing. Measures and tests the pipeline without a model.
struct PassthroughClassifier: Classifier {
    let identity = ModelIdentity(name: "passthrough", version: "1")

    func warmUp() throws {}

    func classify(_ posts: [Post], timings: inout StageTimings) -> [Result<Prediction, PostFailure>] {
        posts.map { _ in .success(Prediction(labels: [])) }
    }
}

/// `--model slow:MS`: the pass-through that takes MS milliseconds per post, to test
/// backpressure and shutdown under a model slower than its input.
struct SlowClassifier: Classifier {
    let millisecondsPerPost: Int
    var identity: ModelIdentity { ModelIdentity(name: "slow", version: "\(millisecondsPerPost)ms") }

    func warmUp() throws {}

    func classify(_ posts: [Post], timings: inout StageTimings) -> [Result<Prediction, PostFailure>] {
        Thread.sleep(forTimeInterval: Double(millisecondsPerPost * posts.count) / 1000)
        return posts.map { _ in .success(Prediction(labels: [])) }
    }
}

/// `--model rules`: fixed text rules standing in for a model in tests and demos of routing.
/// sarcasm: `sarcastic` when the text has #sarcasm or "/s"; correlation: `irrelevant` when the
/// post has no image or the text has #irrelevant, else `explicit`. Not a classifier of real posts.
struct RulesClassifier: Classifier {
    let identity = ModelIdentity(name: "rules", version: "1")

    func warmUp() throws {}

    func classify(_ posts: [Post], timings: inout StageTimings) -> [Result<Prediction, PostFailure>] {
        posts.map { post in
            let text = (post.text ?? "").lowercased()
            let sarcastic = text.contains("#sarcasm") || text.contains("/s")
            let irrelevant = post.imageJPEG == nil || text.contains("#irrelevant")
            return .success(Prediction(labels: [
                TaskLabel(task: "sarcasm", label: sarcastic ? "sarcastic" : "not_sarcastic",
                          probabilities: [("not_sarcastic", sarcastic ? 0 : 1), ("sarcastic", sarcastic ? 1 : 0)], head: "rules"),
                TaskLabel(task: "correlation", label: irrelevant ? "irrelevant" : "explicit",
                          probabilities: [("irrelevant", irrelevant ? 1 : 0), ("implicit", 0), ("explicit", irrelevant ? 0 : 1)], head: "rules"),
            ]))
        }
    }
}

/// Builds the classifier a `--model` setting names.
enum ClassifierFactory {
    /// A bundle's encoders run their products in `precision` and a batch decodes its images on
    /// `decodeThreads` threads (0: GCD's choice; `BundleClassifier.decodeThreads`); test models
    /// ignore both.
    static func make(_ name: String, precision: Precision = .fp32, decodeThreads: Int = 0) throws(SettingsError) -> any Classifier {
        switch name {
        case "passthrough": return PassthroughClassifier()
        case "rules": return RulesClassifier()
        case let slow where slow.hasPrefix("slow:"):
            guard let ms = Int(slow.dropFirst(5)), (0...60_000).contains(ms) else {
                throw SettingsError(setting: "model", source: nil, problem: "'\(name)' is not slow:MS with MS from 0 to 60000")
            }
            return SlowClassifier(millisecondsPerPost: ms)
        default:
            var bundle = try loadBundle(name, precision: precision)
            bundle.decodeThreads = decodeThreads
            return bundle
        }
    }

    /// The classifier `--model` names, loaded and run once on a test post, as `run` and `check`
    /// need it: a bundle that loads but cannot classify fails here, not on the first batch.
    static func makeWarm(_ name: String, precision: Precision, decodeThreads: Int = 0) throws(StartupError) -> any Classifier {
        let classifier: any Classifier
        do {
            classifier = try make(name, precision: precision, decodeThreads: decodeThreads)
        } catch {
            throw StartupError.model(error)
        }
        do {
            try classifier.warmUp()
        } catch {
            throw StartupError.warmUp(model: name, "\(error)")
        }
        return classifier
    }

    /// A model bundle folder (manifest.json and the files it names).
    private static func loadBundle(_ path: String, precision: Precision) throws(SettingsError) -> BundleClassifier {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw SettingsError(setting: "model", source: nil, problem:
                "'\(path)' is neither a test model (passthrough, rules, slow:MS) nor a bundle folder; run scripts/setup-models.sh to build the default bundle in models/default")
        }
        do {
            return try ModelBundle.load(folder: URL(fileURLWithPath: path), precision: precision)
        } catch {
            throw SettingsError(setting: "model", source: nil, problem: "the bundle in \(path) cannot be loaded: \(error)")
        }
    }
}
