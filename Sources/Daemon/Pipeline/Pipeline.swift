import Foundation
import Kafka
import Logging
import Model
import enum PostclassMetrics.Stage
import Synchronization

/// Why the daemon stopped other than by a signal.
struct PipelineError: Error, CustomStringConvertible {
    let description: String
}

/// Counts since start, for the periodic log line and the exit summary.
struct PipelineCounters: Sendable {
    var consumed = 0
    var labelled = 0
    var routed = 0
    var dropped = 0
    var deadLettered = 0
    var offsetResets = 0
    var rebalances = 0
}

/// The daemon's spine: one poll loop on its own thread reads records, admits them within the
/// in-flight limits (pausing partitions when full, while polling on so the group keeps the
/// member), cuts micro-batches and hands them to the worker pool; workers classify and send;
/// delivery reports finish records and store offsets through the ledger.
final class Pipeline: @unchecked Sendable {
    // @unchecked: the poll-loop state (batcher, paused, read positions) is touched only by the thread
    // running `run()`; everything shared is in Mutex/Atomic or thread-safe Kafka handles.
    private let settings: DaemonSettings
    private let classifier: any Classifier
    private let logger: Logger
    private let bootstrap: String
    private let telemetry: Telemetry
    private let stopRequested = Atomic<Bool>(false)
    /// Why delivery cannot go on (set from the delivery or retry threads), nil while it can.
    private let fatalReason = Mutex<String?>(nil)
    let counters = Mutex(PipelineCounters())

    // Poll-loop state.
    private var batcher: Batcher
    private var paused = false
    private var assigned = Set<TopicPartition>()
    /// The next offset to read in each partition: past every record admitted, or back at the
    /// first record let go (``rewind(past:)``). Input resumes from here.
    private var nextToRead: [TopicPartition: Int64] = [:]
    private var reportedSkippedOffsets: Int64 = 0
    /// The mean size of records read, to size each poll.
    private var meanRecordBytes = 1024.0

    init(settings: DaemonSettings, classifier: any Classifier, bootstrap: String, telemetry: Telemetry, logger: Logger) {
        self.settings = settings
        self.telemetry = telemetry
        self.classifier = classifier
        self.bootstrap = bootstrap
        self.logger = logger
        batcher = Batcher(size: settings.batchSize, maxWait: settings.batchWait)
    }

    /// Asks the loop to drain and stop; safe from any thread (a signal handler's queue).
    func requestStop() {
        stopRequested.store(true, ordering: .releasing)
    }

    /// Stops the daemon because output can no longer be delivered: the loop drains what it can
    /// and `run()` throws, so the process exits 2. Readiness fails at once. The first reason wins.
    private func fail(_ reason: String) {
        let first = fatalReason.withLock { current in
            guard current == nil else { return false }
            current = reason
            return true
        }
        guard first else { return }
        logger.critical("stopping: \(reason)")
        telemetry.health.set(.producerConnected, ready: false, reason: reason)
        stopRequested.store(true, ordering: .releasing)
    }

    /// Runs until ``requestStop()``, then drains: in-flight batches finish (within the drain
    /// timeout), the producer is flushed, offsets are committed and the group is left.
    func run() throws(PipelineError) {
        let clients = try makeClients()
        let consumer = clients.consumer, producer = clients.producer, ledger = clients.ledger
        let pool = WorkerPool(workers: settings.workers)
        let processor = BatchProcessor(classifier: classifier,
                                       router: Router(outputTopic: settings.outputTopic, dropWhen: settings.dropWhen, routes: settings.routes),
                                       dlqTopic: settings.dlqTopic, limits: settings.inputLimits, ledger: ledger, sender: clients.sender)
        do {
            try consumer.subscribe(settings.inputTopics)
        } catch {
            throw PipelineError(description: "cannot subscribe to \(settings.inputTopics.joined(separator: ",")): \(error)")
        }
        let reset = (settings.kafkaProperties["auto.offset.reset"] ?? "earliest").lowercased()
        let stallWatch = StallWatch(timeout: settings.stallTimeout, startsAtEarliest: ["earliest", "smallest", "beginning"].contains(reset),
                                    consumer: consumer, producer: producer, moves: { ledger.moves }, telemetry: telemetry, logger: logger)
        stallWatch.start()
        logger.info("consuming", metadata: ["topics": .string(settings.inputTopics.joined(separator: ",")),
                                           "group": .string(settings.groupID), "bootstrap": .string(bootstrap),
                                           "model": .string("\(classifier.identity.name) \(classifier.identity.version)")])
        var fatal: PipelineError?
        var lastReport = ContinuousClock.now
        var lastGauges = ContinuousClock.now
        while !stopRequested.load(ordering: .acquiring) {
            telemetry.loopAlive()
            let now = ContinuousClock.now
            let wait = min(batcher.timeUntilDue(now: now) ?? .milliseconds(100), .milliseconds(100))
            let room = pollRoom(ledger.load)
            let batch = consumer.poll(maxMessages: room, timeout: wait)
            if let error = handle(batch.events, consumer: consumer, ledger: ledger, pool: pool, processor: processor) {
                fatal = error
                break
            }
            counters.withLock { $0.consumed += batch.messages.count }
            countConsumed(batch.messages)
            var overflowed = false
            if paused {
                // librdkafka hands out what it had fetched before the pause (and a broker may
                // answer one fetch with far more than the limits): read it again after resuming.
                rewind(past: batch.messages)
            } else {
                for message in batch.messages {
                    nextToRead[message.topicPartition] = max(nextToRead[message.topicPartition] ?? 0, message.offset + 1)
                    meanRecordBytes += (Double(message.byteCount) - meanRecordBytes) / 64
                }
                overflowed = admit(batch.messages, ledger: ledger, pool: pool, processor: processor)
            }
            reportOffsetGaps(ledger: ledger)
            dispatchDue(pool: pool, processor: processor)
            applyBackpressure(consumer: consumer, ledger: ledger, overflowed: overflowed)
            let load = ledger.load
            telemetry.metrics.setInFlight(messages: load.messages, bytes: load.bytes)
            if ContinuousClock.now - lastGauges > .seconds(1) {
                lastGauges = .now
                telemetry.metrics.setWorkerBusyRatio(pool.busyRatio)
            }
            if ContinuousClock.now - lastReport > .seconds(30) {
                lastReport = .now
                logProgress(ledger: ledger, pool: pool)
            }
        }
        stallWatch.stop()
        if fatal == nil, let reason = fatalReason.withLock({ $0 }) { fatal = PipelineError(description: reason) }
        drain(consumer: consumer, producer: producer, sender: clients.sender, ledger: ledger, pool: pool, processor: processor,
              deliveryFailed: fatal != nil)
        logProgress(ledger: ledger, pool: pool)
        if let fatal { throw fatal }
    }

    private func countConsumed(_ messages: [ConsumedMessage]) {
        guard let first = messages.first else { return }
        if messages.allSatisfy({ $0.topic == first.topic }) {
            telemetry.metrics.consumed(topic: first.topic, count: messages.count)
        } else {
            for (topic, group) in Dictionary(grouping: messages, by: \.topic) { telemetry.metrics.consumed(topic: topic, count: group.count) }
        }
    }

    private struct Clients {
        let consumer: KafkaConsumer
        let producer: KafkaProducer
        let ledger: InFlightLedger
        let sender: RecordSender
    }

    private func makeClients() throws(PipelineError) -> Clients {
        var client = KafkaClientConfiguration(bootstrapServers: bootstrap)
        client.properties = settings.kafkaProperties
        var consumerConfig = KafkaConsumerConfiguration(client: client, groupID: settings.groupID)
        // Keep librdkafka's prefetch small: records it holds are memory the in-flight limits
        // cannot see.
        consumerConfig.client.properties["queued.max.messages.kbytes"] = consumerConfig.client.properties["queued.max.messages.kbytes"]
            ?? String(max(1024, min(65536, settings.maxInflightBytes / 4096)))
        // One fetch response lands in that queue whole: keep it within the in-flight bytes too.
        consumerConfig.client.properties["fetch.max.bytes"] = consumerConfig.client.properties["fetch.max.bytes"]
            ?? String(max(1 << 20, min(52_428_800, settings.maxInflightBytes / 2)))
        consumerConfig.client.statisticsInterval = .seconds(1)  // lag and readiness
        // A record should not wait half a second in a broker's fetch (librdkafka's default wait)
        // on a quiet topic: labelled posts are wanted promptly.
        consumerConfig.client.properties["fetch.wait.max.ms"] = consumerConfig.client.properties["fetch.wait.max.ms"] ?? "50"
        var producerConfig = KafkaProducerConfiguration(client: client)
        producerConfig.client.statisticsInterval = .seconds(1)
        // Dead-letter records carry the input's bytes: the producer must accept the largest input.
        producerConfig.maxMessageBytes = max(1_000_000, settings.maxMessageBytes + 64 * 1024)
        let consumer: KafkaConsumer
        do {
            consumer = try KafkaConsumer(configuration: consumerConfig, logger: logger)
        } catch {
            throw PipelineError(description: "cannot create the Kafka consumer: \(error)")
        }
        let ledger = InFlightLedger { [logger] partition, next in
            do {
                try consumer.storeOffset(partition, nextOffset: next)
            } catch {
                logger.debug("offset not stored (partition revoked?)", metadata: ["partition": "\(partition)", "error": "\(error)"])
            }
        }
        let senderBox = Mutex<RecordSender?>(nil)
        let producer: KafkaProducer
        do {
            producer = try KafkaProducer(configuration: producerConfig, logger: logger, onDelivery: { report in
                senderBox.withLock { $0 }?.handle(report)
            }, onError: { [self] error in
                telemetry.kafkaError(error)
                if error.kind == .fatal {
                    fail("fatal Kafka producer error: \(error); records not yet delivered will be read again after a restart")
                } else {
                    logger.log(level: error.kind == .denied ? .error : .warning, "Kafka producer error", metadata: ["error": "\(error)"])
                }
            }, onStatistics: { [telemetry] stats in
                telemetry.producerStatistics(stats)
            })
        } catch {
            consumer.close()
            throw PipelineError(description: "cannot create the Kafka producer: \(error)")
        }
        let sender = RecordSender(producer: producer, ledger: ledger, dlqTopic: settings.dlqTopic, logger: logger, onDelivered: { [self] pending, report in
            recordDelivery(pending, report)
            counters.withLock { c in
                switch pending.kind {
                case .labelled: c.labelled += 1
                case .routed: c.routed += 1
                case .deadLetter: c.deadLettered += 1
                }
            }
        }, onRetry: { [telemetry] topic, error in
            telemetry.metrics.deliveryRetried(topic: topic, kind: error.kind.rawValue)
        }, onFatal: { [self] reason in
            fail(reason)
        })
        senderBox.withLock { $0 = sender }
        return Clients(consumer: consumer, producer: producer, ledger: ledger, sender: sender)
    }

    private func recordDelivery(_ pending: InFlightLedger.Pending, _ report: DeliveryReport) {
        let metrics = telemetry.metrics
        metrics.produced(topic: report.topicPartition.topic)
        if pending.kind == .deadLetter {
            let code = pending.record.headers.last { $0.key == "error.code" }?.value.map { String(decoding: $0, as: UTF8.self) } ?? "unknown"
            metrics.deadLettered(reason: code)
        }
        if let ts = pending.message.timestampMs { metrics.observeEndToEnd(kafkaTimestampMilliseconds: ts) }
        metrics.setLastProcessedTimestamp(Date())
    }

    /// Handles rebalances, errors and offset resets. Returns an error when the daemon must stop.
    private func handle(_ events: [ConsumerEvent], consumer: KafkaConsumer, ledger: InFlightLedger,
                        pool: WorkerPool, processor: BatchProcessor) -> PipelineError? {
        for event in events {
            switch event {
            case .assigned(let partitions):
                let stale = partitions.filter(assigned.contains)
                if !stale.isEmpty {
                    // Assigned again without a revoke in between: what this loop held for them
                    // belongs to the old assignment.
                    forgetReadState(of: Set(stale), ledger: ledger)
                    logger.warning("partitions assigned again without being revoked: their unfinished records will be read again",
                                   metadata: ["partitions": .string(stale.sorted().map(\.description).joined(separator: ","))])
                }
                ledger.assigned(partitions)
                assigned.formUnion(partitions)
                counters.withLock { $0.rebalances += 1 }
                telemetry.metrics.rebalance(kind: .assigned)
                telemetry.health.set(.groupJoined, ready: true)
                logger.info("partitions assigned", metadata: ["partitions": .string(partitions.sorted().map(\.description).joined(separator: ","))])
                if paused { try? consumer.pause(partitions) }
            case .revoked(let partitions, let lost):
                ledger.revoked(partitions)
                forgetReadState(of: Set(partitions), ledger: ledger)
                counters.withLock { $0.rebalances += 1 }
                telemetry.revoked(partitions, lost: lost)
                logger.info(lost ? "partitions lost (their records will be read again by their next owner)" : "partitions revoked",
                            metadata: ["partitions": .string(partitions.sorted().map(\.description).joined(separator: ","))])
            case .error(let error, let partition):
                telemetry.kafkaError(error)
                if error.kind == .fatal {
                    return PipelineError(description: "fatal Kafka error: \(error)")
                }
                // Everything else librdkafka retries by itself (a broker down, a TLS or SASL
                // hiccup); a refusal that persists shows in readiness and in this log.
                logger.log(level: error.kind == .denied ? .error : .warning, "Kafka error", metadata: ["error": "\(error)", "partition": "\(partition.map(\.description) ?? "-")"])
            case .offsetReset(let partition, let detail):
                counters.withLock { $0.offsetResets += 1 }
                telemetry.metrics.offsetReset(topic: partition.topic)
                logger.error("offset out of range: records were skipped or will be read again; the partition was reset by auto.offset.reset",
                             metadata: ["partition": "\(partition)", "detail": .string(detail)])
            case .statistics(let stats):
                telemetry.consumerStatistics(stats, assigned: assigned)
            }
        }
        return nil
    }

    /// Forgets the loop's state for partitions that are gone (or assigned afresh): their read
    /// positions and the records waiting in the batcher.
    private func forgetReadState(of partitions: Set<TopicPartition>, ledger: InFlightLedger) {
        assigned.subtract(partitions)
        for partition in partitions { nextToRead[partition] = nil }
        for record in batcher.remove(partitions: partitions) { ledger.abandon(record.message) }
    }

    /// Lets go of records that are not admitted: the read position of their partitions moves
    /// back to them, and the seek on resume reads them again.
    private func rewind(past messages: some Sequence<ConsumedMessage>) {
        for message in messages where assigned.contains(message.topicPartition) {
            nextToRead[message.topicPartition] = min(nextToRead[message.topicPartition] ?? message.offset, message.offset)
        }
    }

    /// How many records the next poll may take: what fits in the in-flight limits, in messages and
    /// (by the mean record size so far) in bytes, so a backlog of large records is not pulled into
    /// memory faster than it is finished.
    private func pollRoom(_ load: (messages: Int, bytes: Int)) -> Int {
        let byMessages = settings.maxInflightMessages - load.messages
        let byBytes = Int(Double(max(0, settings.maxInflightBytes - load.bytes)) / max(1, meanRecordBytes))
        return max(1, min(1000, byMessages, byBytes))
    }

    /// Takes records in while there is room. The rest are let go (``rewind(past:)``) and read
    /// again after input resumes, so memory holds what the limits allow plus one poll, never the
    /// backlog. Returns whether any record did not fit.
    private func admit(_ messages: [ConsumedMessage], ledger: InFlightLedger, pool: WorkerPool, processor: BatchProcessor) -> Bool {
        guard !messages.isEmpty else { return false }
        var load = ledger.load
        var taken = 0
        for message in messages {
            guard load.messages < settings.maxInflightMessages, load.bytes + message.byteCount <= settings.maxInflightBytes || load.messages == 0 else { break }
            taken += 1
            load.messages += 1
            load.bytes += message.byteCount
        }
        let now = ContinuousClock.now
        let epochs = ledger.admit(messages[..<taken])
        var full: [[AdmittedRecord]] = []
        for (message, epoch) in zip(messages[..<taken], epochs) {
            guard let epoch else { continue }  // revoked, or a redelivery
            if let batch = batcher.add(AdmittedRecord(message: message, epoch: epoch), now: now) { full.append(batch) }
        }
        rewind(past: messages[taken...])
        submit(full, pool: pool, processor: processor)
        return taken < messages.count
    }

    /// Logs and counts offsets the consumer skipped since the last check.
    private func reportOffsetGaps(ledger: InFlightLedger) {
        let skipped = ledger.skippedOffsets
        guard skipped > reportedSkippedOffsets else { return }
        let new = skipped - reportedSkippedOffsets
        reportedSkippedOffsets = skipped
        telemetry.metrics.offsetGaps(new)
        logger.warning("offsets skipped between consecutive records (compaction or transaction markers; otherwise records the client never delivered)",
                       metadata: ["skipped": "\(new)", "total": "\(skipped)"])
    }

    private func dispatchDue(pool: WorkerPool, processor: BatchProcessor) {
        if let due = batcher.takeIfDue(now: .now) { submit(due, pool: pool, processor: processor) }
    }

    private func submit(_ batch: [AdmittedRecord], pool: WorkerPool, processor: BatchProcessor) {
        submit([batch], pool: pool, processor: processor)
    }

    /// Hands batches to the pool. One poll can cut many small batches at once (a thousand at
    /// batch size 1); they go out as one job per worker, each running its share in order, so
    /// the per-job cost (a dispatch, a wake-up) is paid per worker rather than per batch. Each
    /// batch is still classified, sent and timed on its own; its counts (labels, drops, routes)
    /// are added up over the job and recorded once.
    private func submit(_ batches: [[AdmittedRecord]], pool: WorkerPool, processor: BatchProcessor) {
        guard !batches.isEmpty else { return }
        let now = ContinuousClock.now
        let jobs = min(batches.count, pool.workers)
        for job in 0..<jobs {
            let share = stride(from: job, to: batches.count, by: jobs).map { batches[$0] }
            pool.submit { [self] in
                var counts = BatchCounts()
                for batch in share {
                    let waited = (now - (batch.first?.admittedAt ?? now)) / .seconds(1)
                    let outcome = processor.process(batch)
                    observe(outcome, size: batch.count, waited: waited)
                    counts.add(outcome)
                }
                record(counts)
            }
        }
    }

    /// Records one batch's size, wait and stage times.
    private func observe(_ outcome: BatchOutcome, size: Int, waited: Double) {
        let metrics = telemetry.metrics
        metrics.observeBatch(size: size, waitSeconds: waited)
        var total = 0.0
        for (stage, seconds) in outcome.timings.seconds {
            total += seconds
            let metricStage: Stage = switch stage {
            case .decode: .decode
            case .tokenize: .tokenize
            case .textEncoder: .textEncoder
            case .imageEncoder: .imageEncoder
            case .heads: .heads
            }
            metrics.observeStage(metricStage, seconds: seconds)
        }
        metrics.observeStage(.classify, seconds: total)
    }

    /// Records the counts of a job's batches.
    private func record(_ counts: BatchCounts) {
        let metrics = telemetry.metrics
        for (task, labels) in counts.labels {
            for (label, count) in labels { metrics.labelEmitted(task: task, label: label, count: count) }
        }
        for (rule, count) in counts.dropped { metrics.dropped(task: rule.task, label: rule.label, count: count) }
        for (route, count) in counts.routed { metrics.routed(task: route.match.task, label: route.match.label, topic: route.topic, count: count) }
        let dropped = counts.dropped.values.reduce(0, +)
        if dropped > 0 { counters.withLock { $0.dropped += dropped } }
    }

    /// Pauses every assigned partition while the in-flight limits are reached, or when a poll
    /// brought records that did not fit (`overflowed`: admission stops just short of the byte
    /// limit, so the load alone may never reach it), and resumes once the load has fallen to three
    /// quarters of the limits (so it does not flap at the edge).
    private func applyBackpressure(consumer: KafkaConsumer, ledger: InFlightLedger, overflowed: Bool) {
        let load = ledger.load
        let full = overflowed || load.messages >= settings.maxInflightMessages || load.bytes >= settings.maxInflightBytes
        let relieved = load.messages <= settings.maxInflightMessages * 3 / 4 && load.bytes <= settings.maxInflightBytes / 4 * 3
        if !paused && full {
            paused = true
            try? consumer.pause(Array(assigned))
            logger.debug("in-flight limit reached: input paused", metadata: ["messages": "\(load.messages)", "bytes": "\(load.bytes)"])
        } else if paused && relieved {
            paused = false
            try? consumer.resume(Array(assigned))
            // Resume where this loop stopped reading, not where librdkafka thinks it is: around
            // pause and resume librdkafka 2.0.2 can skip records it had fetched (#4208). Records
            // read twice are told apart by the ledger; records skipped would be lost.
            let positions = nextToRead.filter { assigned.contains($0.key) }
            do { try consumer.seek(positions) } catch {
                logger.warning("could not seek to the read position after resuming", metadata: ["error": "\(error)"])
            }
            logger.debug("input resumed", metadata: ["messages": "\(load.messages)", "bytes": "\(load.bytes)"])
        }
    }

    private func drain(consumer: KafkaConsumer, producer: KafkaProducer, sender: RecordSender, ledger: InFlightLedger,
                       pool: WorkerPool, processor: BatchProcessor, deliveryFailed: Bool) {
        logger.info("draining", metadata: ["in_flight": "\(ledger.load.messages)", "timeout": "\(settings.drainTimeout)"])
        telemetry.stopping()
        // Stop reading; what was read but not admitted is left for the next run.
        try? consumer.pause(Array(assigned))
        paused = true
        if !batcher.isEmpty { submit(batcher.take(), pool: pool, processor: processor) }
        // When delivery has failed for good there is nothing to wait for: what was delivered is
        // committed below and the rest is read again after a restart.
        let deadline = ContinuousClock.now + (deliveryFailed ? .zero : settings.drainTimeout)
        // Keep polling so the group keeps this member (and its commits) while batches finish.
        while ledger.load.messages > 0 && ContinuousClock.now < deadline && fatalReason.withLock({ $0 }) == nil {
            telemetry.loopAlive()
            let batch = consumer.poll(maxMessages: 1, timeout: .milliseconds(50))
            _ = handle(batch.events, consumer: consumer, ledger: ledger, pool: pool, processor: processor)
        }
        let left = ledger.load.messages
        if left > 0 {
            logger.warning("drain ended with records unfinished: their offsets are not committed, so they will be read again on restart",
                           metadata: ["unfinished": "\(left)", "by_partition": .string(ledger.unfinishedSummary())])
        }
        // Records still failing now are not re-sent: the producer closes. Workers still running
        // after the drain timeout find it closed and leave their records unfinished.
        sender.stop()
        let remaining = max(.seconds(1), deadline - .now)
        producer.close(timeout: remaining)
        do { try consumer.commit(timeout: .seconds(5)) } catch {
            logger.warning("final offset commit failed; some records may be read again on restart", metadata: ["error": "\(error)"])
        }
        consumer.close()
    }

    private func logProgress(ledger: InFlightLedger, pool: WorkerPool) {
        let c = counters.withLock { $0 }
        logger.info("progress", metadata: [
            "consumed": "\(c.consumed)", "labelled": "\(c.labelled)", "routed": "\(c.routed)", "dropped": "\(c.dropped)",
            "dead_lettered": "\(c.deadLettered)", "in_flight": "\(ledger.load.messages)", "offset_resets": "\(c.offsetResets)",
            "worker_busy": .string(String(format: "%.2f", pool.busyRatio)),
        ])
    }
}
