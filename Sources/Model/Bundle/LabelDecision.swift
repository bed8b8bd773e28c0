/// Picks a head's label from its probabilities and the manifest's thresholds.
///
/// A label with a threshold wins when its probability reaches the threshold (the most probable
/// such label, if several do); otherwise the most probable label without a threshold wins. So a
/// binary head with `{"sarcastic": 0.4}` says sarcastic from P = 0.4 up, and argmax is the rule
/// when there are no thresholds. If every label has a threshold and none is met, argmax decides.
public struct LabelDecision: Sendable, Equatable {
    public let labels: [String]
    /// One entry per label: its threshold, or nil.
    public let thresholds: [Float?]

    public init(labels: [String], thresholds: [String: Float]) {
        self.labels = labels
        self.thresholds = labels.map { thresholds[$0] }
    }

    /// The index of the winning label.
    public func decide(_ probabilities: ArraySlice<Float>) -> Int {
        let p = Array(probabilities)
        var best: Int?
        for i in p.indices where (thresholds[i].map { p[i] >= $0 } ?? false) {
            if best.map({ p[i] > p[$0] }) ?? true { best = i }
        }
        if let best { return best }
        for i in p.indices where thresholds[i] == nil {
            if best.map({ p[i] > p[$0] }) ?? true { best = i }
        }
        if let best { return best }
        return p.indices.max { p[$0] < p[$1] } ?? 0
    }

    /// The task label for one post's probabilities.
    public func taskLabel(task: String, head: String, probabilities: ArraySlice<Float>,
                          evidence: [(key: String, value: String)] = []) -> TaskLabel {
        let winner = decide(probabilities)
        return TaskLabel(task: task, label: labels[winner],
                         probabilities: zip(labels, probabilities).map { (label: $0, probability: $1) },
                         head: head, evidence: evidence)
    }
}
