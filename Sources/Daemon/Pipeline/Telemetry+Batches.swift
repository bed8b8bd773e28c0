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

    /// Records the label, drop and route counts of a job's batches.
    func record(_ counts: BatchCounts) {
        for (task, labels) in counts.labels {
            for (label, count) in labels { metrics.labelEmitted(task: task, label: label, count: count) }
        }
        for (rule, count) in counts.dropped { metrics.dropped(task: rule.task, label: rule.label, count: count) }
        for (route, count) in counts.routed { metrics.routed(task: route.match.task, label: route.match.label, topic: route.topic, count: count) }
    }

    /// Records a delivered output: where it went, a dead letter's reason, the end-to-end latency.
    func delivered(_ pending: InFlightLedger.Pending, _ report: DeliveryReport) {
        metrics.produced(topic: report.topicPartition.topic)
        if pending.kind == .deadLetter {
            let code = pending.record.headers.last { $0.key == "error.code" }?.value.map { String(decoding: $0, as: UTF8.self) } ?? "unknown"
            metrics.deadLettered(reason: code)
        }
        if let ts = pending.message.timestampMs { metrics.observeEndToEnd(kafkaTimestampMilliseconds: ts) }
        metrics.setLastProcessedTimestamp(Date())
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
