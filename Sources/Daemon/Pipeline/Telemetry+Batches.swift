import Kafka
import Foundation
import Model
import PostclassMetrics

/// What batches and deliveries did, as metrics.
extension Telemetry {
    /// Records one batch's size, wait and stage times.
    func observe(_ outcome: BatchOutcome, size: Int, waited: Double) {
        metrics.observeBatch(size: size, waitSeconds: waited)
        var total = 0.0
        for (stage, seconds) in outcome.timings.seconds {
            total += seconds
            metrics.observeStage(stage, seconds: seconds)
        }
        metrics.observeStage(DaemonMetrics.wholeClassifierStage, seconds: total)
    }

    /// Records the label, drop and route counts of a job's batches; in exactly-once delivery
    /// they wait in the open transaction's tally until it commits.
    func record(_ counts: BatchCounts, transaction: TransactionState?) {
        if let transaction {
            transaction.count { $0.batches.add(counts) }
            return
        }
        record(counts)
    }

    /// Publishes the label, drop and route counts.
    func record(_ counts: BatchCounts) {
        for (task, labels) in counts.labels {
            for (label, count) in labels { metrics.labelEmitted(task: task, label: label, count: count) }
        }
        for (rule, count) in counts.dropped { metrics.dropped(task: rule.task, label: rule.label, count: count) }
        for (route, count) in counts.routed { metrics.routed(task: route.match.task, label: route.match.label, topic: route.topic, count: count) }
    }

    /// Records a delivered output: where it went, a dead letter's reason, the end-to-end latency.
    /// In exactly-once delivery the counts wait in the open transaction's tally until it commits
    /// (``committed(_:)``); the latency is the delivery's either way.
    func delivered(_ pending: InFlightLedger.Pending, _ report: DeliveryReport, transaction: TransactionState?) {
        let topic = report.topicPartition.topic
        let code = pending.kind == .deadLetter
            ? pending.record.headers.last { $0.key == "error.code" }?.value.map { String(decoding: $0, as: UTF8.self) } ?? "unknown"
            : nil
        if let transaction {
            transaction.count { tally in
                tally.produced[topic, default: 0] += 1
                if let code { tally.deadLettered[code, default: 0] += 1 }
            }
        } else {
            metrics.produced(topic: topic)
            if let code { metrics.deadLettered(reason: code) }
        }
        if let ts = pending.message.timestampMs { metrics.observeEndToEnd(kafkaTimestampMilliseconds: ts) }
        metrics.setLastProcessedTimestamp(Date())
    }

    /// Publishes a committed transaction's counts.
    func committed(_ tally: TransactionState.Tally) {
        for (topic, count) in tally.produced { metrics.produced(topic: topic, count: count) }
        for (code, count) in tally.deadLettered { metrics.deadLettered(reason: code, count: count) }
        record(tally.batches)
    }

    /// Counts consumed records by topic (one call for the common single-topic poll).
    func consumed(_ messages: [ConsumedMessage]) {
        guard let first = messages.first else { return }
        if messages.allSatisfy({ $0.topic == first.topic }) {
            metrics.consumed(topic: first.topic, count: messages.count)
        } else {
            for (topic, group) in Dictionary(grouping: messages, by: \.topic) { metrics.consumed(topic: topic, count: group.count) }
        }
    }
}
