import Foundation
import Kafka
import Logging
import Model

/// A record admitted into the pipeline, with the ownership epoch of its partition.
struct AdmittedRecord: Sendable {
    let message: ConsumedMessage
    let epoch: UInt64
    /// When it joined a batch, to measure how long batches wait to form.
    var admittedAt: ContinuousClock.Instant = .now
}

/// Where labelled posts go: the output topic, another topic (`--route`), or nowhere (`--drop-when`).
struct Router: Sendable {
    let outputTopic: String
    let dropWhen: [LabelMatch]
    let routes: [Route]

    enum Destination: Equatable { case output, routed(Route), drop(LabelMatch) }

    func destination(for prediction: Prediction) -> Destination {
        for rule in dropWhen where prediction.label(for: rule.task) == rule.label { return .drop(rule) }
        for route in routes where prediction.label(for: route.match.task) == route.match.label { return .routed(route) }
        return .output
    }
}

/// What one batch did, for metrics and logs.
struct BatchOutcome: Sendable {
    var labelled = 0
    var deadLettered: [String: Int] = [:]
    var dropped: [LabelMatch] = []
    var routed: [Route] = []
    var labels: [String: [String: Int]] = [:]
    var timings = StageTimings()
}

/// The counts of several batches (one worker job's), added up so that each counter is
/// incremented once per job rather than once per batch: at batch size 1 that is per record.
struct BatchCounts: Sendable {
    var labels: [String: [String: Int]] = [:]
    var dropped: [LabelMatch: Int] = [:]
    var routed: [Route: Int] = [:]

    /// Adds another set of counts (a transaction's batches).
    mutating func add(_ other: BatchCounts) {
        add(labels: other.labels)
        dropped.merge(other.dropped, uniquingKeysWith: +)
        routed.merge(other.routed, uniquingKeysWith: +)
    }

    mutating func add(_ outcome: BatchOutcome) {
        add(labels: outcome.labels)
        for rule in outcome.dropped { dropped[rule, default: 0] += 1 }
        for route in outcome.routed { routed[route, default: 0] += 1 }
    }

    /// Adds label counts, per task and label.
    private mutating func add(labels more: [String: [String: Int]]) {
        labels.merge(more) { $0.merging($1, uniquingKeysWith: +) }
    }
}

/// Runs one batch on a worker: validates and decodes every record, classifies the valid posts
/// as one batch, and hands each result to the producer (labelled, routed or dead-letter record).
struct BatchProcessor: Sendable {
    let classifier: any Classifier
    let router: Router
    let dlqTopic: String
    let limits: InputLimits
    let ledger: InFlightLedger
    let sender: RecordSender

    func process(_ batch: [AdmittedRecord]) -> BatchOutcome {
        var outcome = BatchOutcome()
        var posts: [Post] = []
        var inputs: [(AdmittedRecord, InputRecord)] = []
        posts.reserveCapacity(batch.count)
        let decodeStart = ContinuousClock.now
        for record in batch {
            switch InputRecordDecoder.decode(record.message.value, limits: limits) {
            case .success(let input):
                posts.append(input.post)
                inputs.append((record, input))
            case .failure(let reason):
                outcome.deadLettered[reason.code, default: 0] += 1
                sender.deadLetter(record, reason: reason)
            }
        }
        outcome.timings.add(.decode, (ContinuousClock.now - decodeStart) / .seconds(1))
        guard !posts.isEmpty else { return outcome }

        let results = classifier.classify(posts, timings: &outcome.timings)
        for (i, (record, input)) in inputs.enumerated() {
            let result = i < results.count ? results[i] : .failure(PostFailure(code: "model_error", message: "the model returned no result for this post"))
            switch result {
            case .failure(let failure):
                outcome.deadLettered[failure.code, default: 0] += 1
                sender.deadLetter(record, reason: DeadLetterReason(code: failure.code, message: failure.message))
            case .success(let prediction):
                for label in prediction.labels { outcome.labels[label.task, default: [:]][label.label, default: 0] += 1 }
                let destination = router.destination(for: prediction)
                let topic: String
                switch destination {
                case .drop(let rule):
                    outcome.dropped.append(rule)
                    ledger.finish(record.message, epoch: record.epoch)
                    continue
                case .routed(let route):
                    outcome.routed.append(route)
                    topic = route.topic
                case .output:
                    outcome.labelled += 1
                    topic = router.outputTopic
                }
                do {
                    let value = OutputRecord.value(input: record.message.value ?? [], kept: input.keptMembers, shadowed: input.shadowedMembers,
                                                   prediction: prediction, model: classifier.identity, source: record.message)
                    let output = ProducerRecord(topic: topic, key: record.message.key, value: value,
                                                headers: OutputRecord.headers(record.message))
                    sender.send(output, for: record, kind: destination == .output ? .labelled : .routed)
                }
            }
        }
        return outcome
    }
}
