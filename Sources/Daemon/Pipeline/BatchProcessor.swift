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
struct BatchCounts {
    var labels: [String: [String: Int]] = [:]
    var dropped: [LabelMatch: Int] = [:]
    var routed: [Route: Int] = [:]

    mutating func add(_ outcome: BatchOutcome) {
        for (task, counts) in outcome.labels {
            for (label, count) in counts { labels[task, default: [:]][label, default: 0] += count }
        }
        for rule in outcome.dropped { dropped[rule, default: 0] += 1 }
        for route in outcome.routed { routed[route, default: 0] += 1 }
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
                    let value = OutputRecord.value(input: record.message.value ?? [], kept: input.keptMembers,
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

/// Sends output records and makes sure each input record ends up delivered somewhere: a failed
/// output goes to the dead-letter topic, and a failed dead-letter record is retried (without its
/// value if the broker refuses its size) until it lands or its partition is given up.
final class RecordSender: Sendable {
    private let producer: KafkaProducer
    private let ledger: InFlightLedger
    private let dlqTopic: String
    private let logger: Logger
    private let retryQueue = DispatchQueue(label: "postclassd.retry")
    private let onDelivered: @Sendable (InFlightLedger.Pending, DeliveryReport) -> Void

    init(producer: KafkaProducer, ledger: InFlightLedger, dlqTopic: String, logger: Logger,
         onDelivered: @escaping @Sendable (InFlightLedger.Pending, DeliveryReport) -> Void) {
        self.producer = producer
        self.ledger = ledger
        self.dlqTopic = dlqTopic
        self.logger = logger
        self.onDelivered = onDelivered
    }

    func send(_ record: ProducerRecord, for source: AdmittedRecord, kind: InFlightLedger.OutputKind) {
        guard let token = ledger.willSend(source.message, epoch: source.epoch, kind: kind, record: record) else { return }
        do {
            try producer.send(record, token: token, timeout: .seconds(60))
        } catch {
            // Never delivered: take the registration back and dead-letter (or retry) instead.
            guard let pending = ledger.takePending(token: token) else { return }
            handleFailure(pending, error: error)
        }
    }

    func deadLetter(_ source: AdmittedRecord, reason: DeadLetterReason) {
        send(OutputRecord.deadLetter(source.message, reason: reason, topic: dlqTopic), for: source, kind: .deadLetter)
    }

    /// Called on the producer's delivery thread: must not block.
    func handle(_ report: DeliveryReport) {
        guard let pending = ledger.settle(token: report.token, delivered: report.error == nil) else { return }
        if let error = report.error {
            handleFailure(pending, error: error)
            return
        }
        onDelivered(pending, report)
    }

    private func handleFailure(_ pending: InFlightLedger.Pending, error: KafkaError) {
        let source = AdmittedRecord(message: pending.message, epoch: pending.epoch)
        if pending.kind != .deadLetter {
            logger.warning("output record could not be delivered; dead-lettering it", metadata: [
                "source": "\(pending.message.topicPartition)@\(pending.message.offset)", "error": "\(error)"])
            let reason = DeadLetterReason(code: "output_delivery_failed", message: "the labelled record could not be delivered: \(error)")
            retryQueue.async { self.deadLetter(source, reason: reason) }
            return
        }
        logger.error("dead-letter record could not be delivered; retrying in 1 s", metadata: [
            "source": "\(pending.message.topicPartition)@\(pending.message.offset)", "error": "\(error)"])
        var record = pending.record
        if error.kind == .messageTooLarge {
            // The broker will never take these bytes: keep the coordinates and the reason, drop the value.
            record.value = nil
            record.headers.append(KafkaHeader(key: "error.value-omitted", string: "\(pending.message.value?.count ?? 0) bytes refused by the broker"))
        }
        let retry = record
        retryQueue.asyncAfter(deadline: .now() + 1) {
            self.send(retry, for: source, kind: .deadLetter)
        }
    }
}
