import Foundation
import Prometheus

/// The metrics postclassd exports, with one typed method per event the daemon records.
///
/// Every instance owns its own `PrometheusCollectorRegistry` (unless one is passed in), so
/// tests and several daemons in one process never share counters. Names follow Prometheus
/// conventions: `postclassd_` prefix, base units (seconds, bytes), `_total` on counters, and
/// labels drawn from small sets (topics, partitions, error codes, task and label names).
///
/// Why the registry directly and not `MetricsSystem.bootstrap`: the swift-metrics API carries
/// no help text (and `promtool check metrics` flags metrics without `# HELP`), bootstrapping is
/// process-wide and once-only (which would couple tests), and histogram buckets are per metric
/// here. ``metricsFactory`` still lets the daemon route libraries' swift-metrics into the same
/// scrape if it wants to.
///
/// All methods are thread-safe and cheap (a lock and a dictionary lookup, then an atomic add):
/// call them from the poll loop, the workers or delivery callbacks.
public final class DaemonMetrics: Sendable {
    /// The registry the `/metrics` endpoint renders.
    public let registry: PrometheusCollectorRegistry

    private let consumedTotal: CounterFamily
    private let producedTotal: CounterFamily
    private let deadLetteredTotal: CounterFamily
    private let labelsEmittedTotal: CounterFamily
    private let droppedTotal: CounterFamily
    private let routedTotal: CounterFamily
    private let rebalancesTotal: CounterFamily
    private let kafkaErrorsTotal: CounterFamily
    private let offsetResetsTotal: CounterFamily
    private let deliveryRetriesTotal: CounterFamily
    private let offsetGapsTotal: Counter
    private let transactionsCommittedTotal: Counter
    private let transactionsAbortedTotal: CounterFamily
    private let transactionCommit: ValueHistogram

    private let batchSize: ValueHistogram
    private let batchWait: ValueHistogram
    /// One series per stage named at init, made at start: the per-batch record is then a lookup
    /// in an immutable table rather than a labelled lookup under a lock.
    private let stageDuration: [String: ValueHistogram]
    /// Series for stages not named at init, made on first use.
    private let otherStages: HistogramFamily
    private let endToEnd: ValueHistogram

    private let inFlightMessages: Gauge
    private let inFlightBytes: Gauge
    private let workerBusyRatio: Gauge
    private let lastProcessedTimestamp: Gauge
    private let inputStalled: Gauge
    private let consumerLag: GaugeFamily
    private let buildInfoFamily: GaugeFamily

    /// Creates the daemon's metrics in `registry` (a fresh one by default).
    ///
    /// Unlabelled histograms and gauges are registered at once, so a scrape right after start
    /// already shows them at zero, and so are the stage histograms (one per name in `stages`, and
    /// ``wholeClassifierStage``); other labelled series appear on their first use.
    ///
    /// - Parameter stages: the `stage` label values of `postclassd_stage_duration_seconds`: the
    ///   classifier's own stage names (the model's `InferenceStage`), so there is one list of them.
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), stages: [String] = []) {
        self.registry = registry
        let r = registry

        consumedTotal = CounterFamily(r, name: "postclassd_messages_consumed_total",
            help: "Messages read from the input topics.", labels: ["topic"])
        producedTotal = CounterFamily(r, name: "postclassd_messages_produced_total",
            help: "Output records confirmed delivered by the broker, per destination topic.", labels: ["topic"])
        deadLetteredTotal = CounterFamily(r, name: "postclassd_messages_dead_lettered_total",
            help: "Input messages sent to the dead-letter topic, per error code.", labels: ["reason"])
        labelsEmittedTotal = CounterFamily(r, name: "postclassd_labels_emitted_total",
            help: "Labels assigned to posts, per task and label.", labels: ["task", "label"])
        droppedTotal = CounterFamily(r, name: "postclassd_messages_dropped_total",
            help: "Posts kept out of the output topic by --drop-when, per matching task and label.",
            labels: ["task", "label"])
        routedTotal = CounterFamily(r, name: "postclassd_messages_routed_total",
            help: "Posts sent to another topic by --route, per matching task, label and destination topic.",
            labels: ["task", "label", "topic"])
        rebalancesTotal = CounterFamily(r, name: "postclassd_rebalances_total",
            help: "Consumer group rebalance events seen by this consumer, per kind (assigned, revoked, lost).",
            labels: ["kind"])
        kafkaErrorsTotal = CounterFamily(r, name: "postclassd_kafka_errors_total",
            help: "Errors reported by the Kafka client, per kind.", labels: ["kind"])
        offsetResetsTotal = CounterFamily(r, name: "postclassd_offset_resets_total",
            help: "Partitions whose next offset was out of range and was reset per auto.offset.reset.",
            labels: ["topic"])

        deliveryRetriesTotal = CounterFamily(r, name: "postclassd_delivery_retries_total",
            help: "Output records sent again after a failed delivery, per destination topic and error kind (transient: the cluster had a bad moment; denied: the cluster refused this client).",
            labels: ["topic", "kind"])

        offsetGapsTotal = r.makeCounter(descriptor: descriptor("postclassd_offset_gaps_total",
            "Offsets never received between two consecutive records of a partition (compaction and transaction markers leave such gaps; so does a client that skips records)."))

        transactionsCommittedTotal = r.makeCounter(descriptor: descriptor("postclassd_transactions_committed_total",
            "Kafka transactions committed (delivery exactly-once): output records and the input offsets they finish, made visible together."))
        transactionsAbortedTotal = CounterFamily(r, name: "postclassd_transactions_aborted_total",
            help: "Kafka transactions aborted (delivery exactly-once), per reason (error: the broker refused a step; rebalance: partitions were revoked; shutdown: batches did not finish in the drain); their input is read again.",
            labels: ["reason"])
        transactionCommit = r.makeValueHistogram(
            descriptor: descriptor("postclassd_transaction_commit_seconds",
                "Time to commit one transaction (delivery exactly-once): adding the input offsets and committing, including the wait for its output's delivery."),
            buckets: MetricBuckets.latencySeconds)

        batchSize = r.makeValueHistogram(
            descriptor: descriptor("postclassd_batch_size", "Posts per classified batch."),
            buckets: MetricBuckets.batchSize)
        batchWait = r.makeValueHistogram(
            descriptor: descriptor("postclassd_batch_wait_seconds",
                "Time from a batch's first post to the batch being closed (by size or --batch-wait-ms)."),
            buckets: MetricBuckets.latencySeconds)
        let family = HistogramFamily(r, name: "postclassd_stage_duration_seconds",
            help: "Time spent per pipeline stage per batch.", labels: ["stage"],
            buckets: MetricBuckets.latencySeconds)
        stageDuration = Dictionary((stages + [Self.wholeClassifierStage]).map { ($0, family($0)) }) { first, _ in first }
        otherStages = family
        endToEnd = r.makeValueHistogram(
            descriptor: descriptor("postclassd_end_to_end_latency_seconds",
                "Time from the input record's Kafka timestamp to its output record's delivery."),
            buckets: MetricBuckets.latencySeconds)

        inFlightMessages = r.makeGauge(descriptor: descriptor("postclassd_inflight_messages",
            "Messages consumed whose output is not yet confirmed delivered."))
        inFlightBytes = r.makeGauge(descriptor: descriptor("postclassd_inflight_bytes",
            "Payload bytes of the in-flight messages."))
        workerBusyRatio = r.makeGauge(descriptor: descriptor("postclassd_worker_busy_ratio",
            "Fraction of the worker pool busy running batches (0 to 1)."))
        lastProcessedTimestamp = r.makeGauge(descriptor: descriptor("postclassd_last_processed_timestamp_seconds",
            "Unix time at which the last record was processed."))
        inputStalled = r.makeGauge(descriptor: descriptor("postclassd_input_stalled",
            "1 while records wait in an assigned partition and none was taken in or finished for the stall timeout, else 0."))
        consumerLag = GaugeFamily(r, name: "postclassd_consumer_lag_messages",
            help: "Messages between the committed offset and the partition's high watermark, per fetching partition.",
            labels: ["topic", "partition"])
        buildInfoFamily = GaugeFamily(r, name: "postclassd_build_info",
            help: "Always 1; labels carry the daemon version and the loaded model bundle.",
            labels: ["version", "model_bundle"])
    }

    /// A swift-metrics factory over the same registry, for `MetricsSystem.bootstrap` if the
    /// daemon wants libraries' swift-metrics in the same scrape. Do not create metrics with the
    /// names above through it: the registry rejects one name registered with two help texts.
    public var metricsFactory: PrometheusMetricsFactory {
        PrometheusMetricsFactory(registry: registry)
    }

    /// The Prometheus text exposition of everything in ``registry``.
    public func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }

    // MARK: Counters

    /// Counts `count` messages read from `topic`.
    public func consumed(topic: String, count: Int = 1) {
        consumedTotal(topic).increment(by: Int64(count))
    }

    /// Counts `count` output records confirmed delivered to `topic`.
    public func produced(topic: String, count: Int = 1) {
        producedTotal(topic).increment(by: Int64(count))
    }

    /// Counts a message sent to the dead-letter topic; `reason` is its short error code
    /// (the `error.code` header, e.g. `malformed_json`, `bad_base64`).
    public func deadLettered(reason: String, count: Int = 1) {
        deadLetteredTotal(reason).increment(by: Int64(count))
    }

    /// Counts a label assigned to a post by a task (e.g. `task: "nsfw", label: "safe"`).
    public func labelEmitted(task: String, label: String, count: Int = 1) {
        labelsEmittedTotal(task, label).increment(by: Int64(count))
    }

    /// Counts a post kept out of the output by `--drop-when task=label`.
    public func dropped(task: String, label: String, count: Int = 1) {
        droppedTotal(task, label).increment(by: Int64(count))
    }

    /// Counts a post sent to `topic` by `--route task=label:topic`.
    public func routed(task: String, label: String, topic: String, count: Int = 1) {
        routedTotal(task, label, topic).increment(by: Int64(count))
    }

    /// Counts a rebalance event.
    public func rebalance(kind: RebalanceKind) {
        rebalancesTotal(kind.rawValue).increment()
    }

    /// Counts a Kafka client error; `kind` is a short code (e.g. librdkafka's error name in
    /// snake case: `all_brokers_down`, `transport`, `msg_timed_out`), never a free-form message.
    public func kafkaError(kind: String) {
        kafkaErrorsTotal(kind).increment()
    }

    /// Counts a partition of `topic` whose offset was out of range and reset.
    /// An output record is sent again after its delivery failed with an error of `kind`.
    public func deliveryRetried(topic: String, kind: String) {
        deliveryRetriesTotal(topic, kind).increment()
    }

    /// Offsets skipped between consecutive records of a partition.
    public func offsetGaps(_ count: Int64) {
        offsetGapsTotal.increment(by: count)
    }

    public func offsetReset(topic: String) {
        offsetResetsTotal(topic).increment()
    }

    /// A transaction committed after `seconds` in the commit.
    public func transactionCommitted(seconds: Double) {
        transactionsCommittedTotal.increment()
        transactionCommit.record(max(0, seconds))
    }

    /// A transaction was aborted; `reason` is one of a small set (`error`, `rebalance`, `shutdown`).
    public func transactionAborted(reason: String) {
        transactionsAbortedTotal(reason).increment()
    }

    // MARK: Histograms

    /// Records a closed batch: its post count and how long it waited to fill.
    public func observeBatch(size: Int, waitSeconds: Double) {
        batchSize.record(Double(size))
        batchWait.record(max(0, waitSeconds))
    }

    /// The `stage` label of a whole classifier call, recorded for every batch (classifiers without
    /// finer stages, e.g. `passthrough`, report only this).
    public static let wholeClassifierStage = "classify"

    /// Records the time one batch spent in `stage` (a `stage` label value).
    public func observeStage(_ stage: String, seconds: Double) {
        (stageDuration[stage] ?? otherStages(stage)).record(max(0, seconds))
    }

    /// Records the time one batch spent in `stage`, named by its raw value.
    public func observeStage<S: RawRepresentable<String>>(_ stage: S, seconds: Double) {
        observeStage(stage.rawValue, seconds: seconds)
    }

    /// Runs `body` and records its duration as one batch's time in `stage`.
    public func timeStage<Result>(_ stage: String, _ body: () throws -> Result) rethrows -> Result {
        let clock = ContinuousClock()
        let start = clock.now
        defer { observeStage(stage, seconds: Self.seconds(clock.now - start)) }
        return try body()
    }

    /// Records the end-to-end latency of a record whose Kafka timestamp (milliseconds since the
    /// Unix epoch, as librdkafka reports it) is `kafkaTimestampMilliseconds`, delivered at `deliveredAt`.
    public func observeEndToEnd(kafkaTimestampMilliseconds: Int64, deliveredAt: Date = Date()) {
        observeEndToEnd(seconds: deliveredAt.timeIntervalSince1970 - Double(kafkaTimestampMilliseconds) / 1000)
    }

    /// Records one record's end-to-end latency: from its Kafka timestamp to its output's delivery.
    ///
    /// Negative values (the producer's clock ahead of ours) are clamped to zero, since a
    /// negative sample would lower the histogram's sum.
    public func observeEndToEnd(seconds: Double) {
        endToEnd.record(max(0, seconds))
    }

    // MARK: Gauges

    /// Sets the in-flight totals the backpressure limits apply to.
    public func setInFlight(messages: Int, bytes: Int) {
        inFlightMessages.set(to: Double(messages))
        inFlightBytes.set(to: Double(bytes))
    }

    /// Sets the consumer lag of one partition; a negative `lag` (librdkafka's "unknown") removes
    /// the series rather than export a misleading number.
    public func setConsumerLag(topic: String, partition: Int32, lag: Int64) {
        let key = [topic, String(partition)]
        if lag < 0 {
            consumerLag.removeAll { $0 == key }
        } else {
            consumerLag(key).set(to: Double(lag))
        }
    }

    /// Removes the lag series of every partition not in `assigned`; call after each rebalance so
    /// a revoked partition's lag disappears instead of freezing at its last value.
    public func retainConsumerLag(assigned: Set<TopicPartition>) {
        consumerLag.removeAll { key in
            guard key.count == 2, let partition = Int32(key[1]) else { return true }
            return !assigned.contains(TopicPartition(topic: key[0], partition: partition))
        }
    }

    /// Removes the lag series of the given partitions (e.g. on revoke).
    public func removeConsumerLag(_ partitions: some Sequence<TopicPartition>) {
        let doomed = Set(partitions.map { [$0.topic, String($0.partition)] })
        consumerLag.removeAll { doomed.contains($0) }
    }

    /// Sets whether input is stalled (records wait, nothing moves).
    public func setInputStalled(_ stalled: Bool) {
        inputStalled.set(to: stalled ? 1 : 0)
    }

    /// Sets the fraction of the worker pool that is busy; clamped to 0...1.
    public func setWorkerBusyRatio(_ ratio: Double) {
        workerBusyRatio.set(to: ratio.isNaN ? 0 : min(1, max(0, ratio)))
    }

    /// Sets the time the last record was processed, in Unix seconds.
    public func setLastProcessedTimestamp(_ unixSeconds: Double) {
        lastProcessedTimestamp.set(to: unixSeconds)
    }

    /// Sets the time the last record was processed.
    public func setLastProcessedTimestamp(_ date: Date) {
        setLastProcessedTimestamp(date.timeIntervalSince1970)
    }

    private static func seconds(_ duration: Duration) -> Double {
        let (whole, attoseconds) = duration.components
        return Double(whole) + Double(attoseconds) / 1e18
    }

    /// Publishes `postclassd_build_info{version, model_bundle} 1`. Calling it again (e.g. after
    /// a model reload) replaces the previous series, so there is always exactly one.
    public func buildInfo(version: String, modelBundle: String) {
        let key = [version, modelBundle]
        buildInfoFamily.removeAll { $0 != key }
        buildInfoFamily(key).set(to: 1)
    }
}
