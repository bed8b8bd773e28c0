import Dispatch
import Foundation
import Synchronization

/// A model bundle as the daemon runs it: decode and tokenize, the encoders as batched products,
/// then every head over the batch's features.
///
/// Thread-safe: all state is immutable after loading; `classify` runs on the daemon's worker
/// threads, several batches at once, and fans decoding (over `decodeThreads`, `Parallel`) and
/// tokenizing out with `DispatchQueue.concurrentPerform` (GCD caps the width at the core count).
public struct BundleClassifier: Classifier {
    public let identity: ModelIdentity
    public let manifest: BundleManifest
    let text: BertTextEncoder
    let maxTokens: Int
    let image: (any ImageEncoder)?
    let imageLoader: ImageLoader?
    let heads: [any TaskHead]
    /// The threads one batch decodes its JPEGs on: 0 lets GCD pick (up to the core count), 1
    /// decodes them one after another on the calling thread. The daemon gives each batch its
    /// share of the cores (`blas-threads`): where its workers already fill every core, a fan-out
    /// only adds threads that evict each other's caches (bench/e2e/README.md).
    public var decodeThreads = 0

    init(manifest: BundleManifest, text: BertTextEncoder, maxTokens: Int, image: (any ImageEncoder)?,
         imageLimits: JPEGDecodeLimits, heads: [any TaskHead]) throws(ModelLoadError) {
        identity = ModelIdentity(name: manifest.name, version: manifest.version)
        self.manifest = manifest
        self.text = text
        self.maxTokens = maxTokens
        self.image = image
        self.heads = heads
        if let image {
            do { imageLoader = try ImageLoader(config: image.preprocess, limits: imageLimits) } catch {
                throw .inconsistent(detail: "image encoder preprocessing: \(error)")
            }
        } else {
            imageLoader = nil
        }
    }

    /// Runs a batch of synthetic posts (with and without an image) so that lazily-built state and
    /// the BLAS thread pool exist before the first real batch.
    public func warmUp() throws {
        let posts = [Post(id: "warm-up-1", text: "warming up the model", imageJPEG: nil),
                     Post(id: "warm-up-2", text: "", imageJPEG: nil)]
        var timings = StageTimings()
        for result in classify(posts, timings: &timings) {
            if case let .failure(failure) = result { throw failure }
        }
        if let image {
            let pixels = [Float](repeating: 0, count: image.preprocess.valuesPerImage)
            _ = try image.encode(pixels, batch: 1)
        }
    }

    public func classify(_ posts: [Post], timings: inout StageTimings) -> [Result<Prediction, PostFailure>] {
        var failures = [PostFailure?](repeating: nil, count: posts.count)
        let pixels = timings.measure(.decode) { decodeImages(posts, failures: &failures) }
        let tokenized = timings.measure(.tokenize) { tokenize(posts) }
        do {
            let features = try encode(tokenized, pixels: pixels, failures: failures, timings: &timings)
            let labels = try timings.measure(.heads) { () throws(InferenceError) -> [[TaskLabel?]] in
                var all: [[TaskLabel?]] = []
                for head in heads { all.append(try head.label(features)) }
                return all
            }
            var results: [Result<Prediction, PostFailure>] = []
            var row = 0
            for failure in failures {
                if let failure { results.append(.failure(failure)); continue }
                let postLabels = zip(heads, labels).map { head, perPost in
                    perPost[row] ?? Self.notApplicable(head)
                }
                results.append(.success(Prediction(labels: postLabels)))
                row += 1
            }
            return results
        } catch {
            let failure = PostFailure(code: "model_error", message: "the model failed on this batch (\(error)); this is a bug or a broken bundle: check the bundle with postclassd classify and report it")
            return posts.map { _ in .failure(failure) }
        }
    }

    /// The label a head gives a post it cannot judge (correlation without an image).
    static func notApplicable(_ head: any TaskHead) -> TaskLabel {
        TaskLabel(task: head.task, label: "no_image", probabilities: [], head: head.headName,
                  evidence: [("reason", "the post has no image")])
    }

    /// Decodes and preprocesses every image in parallel; a failure marks its post.
    private func decodeImages(_ posts: [Post], failures: inout [PostFailure?]) -> [[Float]?] {
        guard let imageLoader else { return posts.map { _ in nil } }
        let slots = ResultSlots<Result<[Float], PostFailure>>(count: posts.count)
        Parallel.forEachSlice(count: posts.count, threads: decodeThreads > 0 ? decodeThreads : posts.count) { range in
            for b in range {
                if let jpeg = posts[b].imageJPEG { slots[b] = imageLoader.load(jpeg) }
            }
        }
        return slots.values.enumerated().map { b, outcome in
            switch outcome {
            case nil: return nil
            case let .success(pixels)?: return pixels
            case let .failure(failure)?:
                failures[b] = failure
                return nil
            }
        }
    }

    private func tokenize(_ posts: [Post]) -> [TokenizedWords] {
        let slots = ResultSlots<TokenizedWords>(count: posts.count)
        let tokenizer = text.tokenizer, limit = min(maxTokens, text.encoder.maxPositions)
        DispatchQueue.concurrentPerform(iterations: posts.count) { b in
            slots[b] = tokenizer.encodeWords(posts[b].text ?? "", maxLength: limit)
        }
        return slots.values.map { $0 ?? tokenizer.encodeWords("", maxLength: limit) }
    }

    /// The encoders over the posts that did not fail.
    private func encode(_ tokenized: [TokenizedWords], pixels: [[Float]?], failures: [PostFailure?],
                        timings: inout StageTimings) throws -> BatchFeatures {
        let kept = failures.indices.filter { failures[$0] == nil }
        let ids = kept.map { tokenized[$0].ids }
        let branches = Set(heads.compactMap(\.textLayerInput))
        let output = try timings.measure(.textEncoder) { try text.encoder.forward(ids, keepingInputsOf: branches) }
        var imageRow = [Int?](repeating: nil, count: kept.count)
        var imageEncoding: ImageEncoding?
        if let image {
            var batch: [Float] = []
            var count = 0
            for (row, b) in kept.enumerated() {
                guard let values = pixels[b] else { continue }
                batch.append(contentsOf: values)
                imageRow[row] = count
                count += 1
            }
            if count > 0 {
                imageEncoding = try timings.measure(.imageEncoder) { () throws(InferenceError) in try image.encode(batch, batch: count) }
            }
        }
        return BatchFeatures(tokenIDs: ids, textStates: output.tokenStates, textLengths: output.lengths,
                             textLayerInputs: output.layerInputs, sentenceVectors: output.sentenceVectors, words: kept.map { tokenized[$0].words },
                             image: imageEncoding, imageRow: imageRow)
    }
}

/// Per-index results written from `concurrentPerform` iterations (each index by one iteration only).
final class ResultSlots<Value: Sendable>: Sendable {
    private let storage: Mutex<[Value?]>

    init(count: Int) { storage = Mutex([Value?](repeating: nil, count: count)) }

    subscript(index: Int) -> Value? {
        get { storage.withLock { $0[index] } }
        set { storage.withLock { $0[index] = newValue } }
    }

    var values: [Value?] { storage.withLock { $0 } }
}
