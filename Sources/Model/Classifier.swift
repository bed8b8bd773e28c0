/// A post ready for classification: validated, with its image still JPEG-compressed (decoding is
/// part of classification, so it runs batched on the worker pool and its failures are per post).
public struct Post: Sendable {
    public let id: String
    public let text: String?
    public let imageJPEG: [UInt8]?

    public init(id: String, text: String?, imageJPEG: [UInt8]?) {
        self.id = id
        self.text = text
        self.imageJPEG = imageJPEG
    }
}

/// One task's answer for one post.
public struct TaskLabel: Sendable, Equatable {
    /// The task, e.g. `sarcasm` or `correlation`.
    public let task: String
    /// The winning label, e.g. `sarcastic`.
    public let label: String
    /// Every label's probability, in the head's label order.
    public let probabilities: [(label: String, probability: Float)]
    /// The head that produced it, with its kind, e.g. `clfa` or `zero-shot-imagenet`.
    public let head: String
    /// Why, where the head can say (e.g. the concept and words that matched), as ordered pairs.
    public let evidence: [(key: String, value: String)]

    public init(task: String, label: String, probabilities: [(label: String, probability: Float)],
                head: String, evidence: [(key: String, value: String)] = []) {
        self.task = task
        self.label = label
        self.probabilities = probabilities
        self.head = head
        self.evidence = evidence
    }

    public static func == (a: TaskLabel, b: TaskLabel) -> Bool {
        a.task == b.task && a.label == b.label && a.head == b.head
            && a.probabilities.map(\.label) == b.probabilities.map(\.label)
            && a.probabilities.map(\.probability) == b.probabilities.map(\.probability)
            && a.evidence.map(\.key) == b.evidence.map(\.key) && a.evidence.map(\.value) == b.evidence.map(\.value)
    }
}

/// Everything a model says about one post.
public struct Prediction: Sendable, Equatable {
    public let labels: [TaskLabel]

    public init(labels: [TaskLabel]) {
        self.labels = labels
    }

    /// The label given for a task, if the model has that task.
    public func label(for task: String) -> String? {
        labels.first { $0.task == task }?.label
    }
}

/// Why one post could not be classified. `code` is short and stable (it becomes the dead-letter
/// record's `error.code` header); `message` says what was wrong and what to do.
public struct PostFailure: Error, Sendable, Equatable {
    public let code: String
    public let message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }
}

/// What a model calls itself in every output record.
public struct ModelIdentity: Sendable, Equatable {
    public let name: String
    public let version: String

    public init(name: String, version: String) {
        self.name = name
        self.version = version
    }
}

/// The stages whose time the daemon reports separately.
public enum InferenceStage: String, Sendable, CaseIterable {
    case decode, tokenize, textEncoder = "text_encoder", imageEncoder = "image_encoder", heads
}

/// Seconds spent per stage while classifying one batch.
public struct StageTimings: Sendable {
    public private(set) var seconds: [InferenceStage: Double] = [:]

    public init() {}

    public mutating func add(_ stage: InferenceStage, _ value: Double) {
        seconds[stage, default: 0] += value
    }

    /// Runs `body`, charging its wall time to `stage`.
    public mutating func measure<R>(_ stage: InferenceStage, _ body: () throws -> R) rethrows -> R {
        let start = ContinuousClock.now
        defer { add(stage, (ContinuousClock.now - start) / .seconds(1)) }
        return try body()
    }
}

/// A model the daemon can run: any number of tasks over a batch of posts.
///
/// `classify` is called from the daemon's worker pool, several batches at once, so it must be
/// thread-safe; it runs synchronously on the worker thread (never on Swift's cooperative pool).
public protocol Classifier: Sendable {
    var identity: ModelIdentity { get }

    /// Prepares for the first batch (loads lazily-built state, runs a dummy batch) so the daemon
    /// reports ready only when the first real batch will be fast.
    func warmUp() throws

    /// Classifies a batch. Returns exactly one result per post, in order; a post that cannot be
    /// classified (an undecodable image) gets a failure and the others are unaffected.
    func classify(_ posts: [Post], timings: inout StageTimings) -> [Result<Prediction, PostFailure>]
}
