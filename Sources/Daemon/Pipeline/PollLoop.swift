import Dispatch
import Kafka
import Logging
import Model

/// The poll loop's state and steps: what has been read from which partition, the batch being
/// cut, and whether input flows. Owned by ``Pipeline/run()`` and used on its thread only: the
/// type is not `Sendable`, so no worker or callback can reach it.
struct PollLoop {
    /// Whether input flows.
    enum Flow {
        /// Reading and admitting records.
        case running
        /// Partitions paused at the in-flight limits; records polled meanwhile are let go.
        case paused
        /// Stopping: nothing more is admitted.
        case draining
    }

    let pipeline: Pipeline
    let clients: PipelineClients
    let pool: WorkerPool
    let processor: BatchProcessor
    private(set) var flow = Flow.running
    var batcher: Batcher
    var assigned = Set<TopicPartition>()
    /// The next offset to read in each partition: past every record admitted, or back at the
    /// first record let go (``rewind(past:)``). Input resumes from here.
    var nextToRead: [TopicPartition: Int64] = [:]
    /// Exactly-once delivery: the open transaction; nil in at-least-once.
    var transactions: Transactions?
    /// Exactly-once delivery: batches cut but not yet handed to a worker. They are handed out
    /// only as workers free up, so a commit (which waits for the batches handed out) waits for at
    /// most one batch per worker, not for the whole in-flight backlog.
    var ready: [[AdmittedRecord]] = []
    /// Exactly-once: signalled by the pool each time a worker finishes a job.
    let workerFreed = DispatchSemaphore(value: 0)
    private var reportedSkippedOffsets: Int64 = 0
    /// The mean size of records read, to size each poll.
    private var meanRecordBytes = 1024.0

    // Copied out of the pipeline once: admission reads the limits for every record.
    let settings: DaemonSettings
    let telemetry: Telemetry
    let logger: Logger
    let ledger: InFlightLedger

    init(pipeline: Pipeline, clients: PipelineClients) {
        let settings = pipeline.settings
        self.pipeline = pipeline
        self.clients = clients
        self.settings = settings
        telemetry = pipeline.telemetry
        logger = pipeline.logger
        ledger = clients.ledger
        // Exactly-once hands batches out only as workers free up: a finished job signals the
        // poll loop, which waits for that rather than in a poll, so the next batch goes out at once.
        if clients.transaction != nil {
            let freed = workerFreed
            pool = WorkerPool(workers: settings.workers, onJobFinished: { freed.signal() })
        } else {
            pool = WorkerPool(workers: settings.workers)
        }
        processor = BatchProcessor(classifier: pipeline.classifier,
                                   router: Router(outputTopic: settings.outputTopic, dropWhen: settings.dropWhen, routes: settings.routes),
                                   dlqTopic: settings.dlqTopic, limits: settings.inputLimits, ledger: clients.ledger, sender: clients.sender)
        batcher = Batcher(size: settings.batchSize, maxWait: settings.batchWait)
        if let state = clients.transaction {
            transactions = Transactions(producer: clients.producer, consumer: clients.consumer, state: state,
                                        interval: settings.transactionInterval, transactionalID: settings.effectiveTransactionalID,
                                        telemetry: pipeline.telemetry, logger: pipeline.logger)
        }
    }

    /// Polls until a stop is requested. Returns the error that ended it early, if one did.
    mutating func run() -> PipelineError? {
        var lastReport = ContinuousClock.now
        var lastGauges = ContinuousClock.now
        if let reason = transactions?.begin() {
            pipeline.fail(reason)
            return .deliveryStopped(reason: reason)
        }
        while !pipeline.isStopRequested {
            telemetry.loopAlive()
            // With batches waiting for a worker, the loop waits for a worker (below), not in poll.
            let waitForWorker = !ready.isEmpty && transactions?.isCommitting != true
            let wait = waitForWorker ? .zero : min(batcher.timeUntilDue(now: .now) ?? .milliseconds(100), .milliseconds(100))
            let batch = clients.consumer.poll(maxMessages: pollRoom(ledger.load), timeout: wait)
            if let error = handle(batch.events) { return error }
            pipeline.counters.withLock { $0.consumed += batch.messages.count }
            telemetry.consumed(batch.messages)
            var overflowed = false
            if flow == .running {
                for message in batch.messages {
                    nextToRead[message.topicPartition] = max(nextToRead[message.topicPartition] ?? 0, message.offset + 1)
                    meanRecordBytes += (Double(message.byteCount) - meanRecordBytes) / 64
                }
                overflowed = admit(batch.messages)
            } else {
                // librdkafka hands out what it had fetched before the pause (and a broker may
                // answer one fetch with far more than the limits): read it again after resuming.
                rewind(past: batch.messages)
            }
            reportOffsetGaps()
            if let due = batcher.takeIfDue(now: .now) { submit([due]) }
            handOutReady()
            if let error = commitTransactionIfDue() { return error }
            waitForFreeWorkerIfNeeded()
            applyBackpressure(overflowed: overflowed)
            let load = ledger.load
            telemetry.metrics.setInFlight(messages: load.messages, bytes: load.bytes)
            if ContinuousClock.now - lastGauges > .seconds(1) {
                lastGauges = .now
                telemetry.metrics.setWorkerBusyRatio(pool.busyRatio)
            }
            if ContinuousClock.now - lastReport > .seconds(30) {
                lastReport = .now
                pipeline.logProgress(inFlight: load.messages, workerBusy: pool.busyRatio)
            }
        }
        return nil
    }

    /// Lets go of records that are not admitted: the read position of their partitions moves
    /// back to them, and the seek on resume reads them again.
    mutating func rewind(past messages: some Sequence<ConsumedMessage>) {
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
    private mutating func admit(_ messages: [ConsumedMessage]) -> Bool {
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
            transactions?.admitted(message.topicPartition, offset: message.offset)
            if let batch = batcher.add(AdmittedRecord(message: message, epoch: epoch), now: now) { full.append(batch) }
        }
        rewind(past: messages[taken...])
        submit(full)
        return taken < messages.count
    }

    /// Logs and counts offsets the consumer skipped since the last check.
    private mutating func reportOffsetGaps() {
        let skipped = ledger.skippedOffsets
        guard skipped > reportedSkippedOffsets else { return }
        let new = skipped - reportedSkippedOffsets
        reportedSkippedOffsets = skipped
        telemetry.metrics.offsetGaps(new)
        logger.warning("offsets skipped between consecutive records (compaction or transaction markers; otherwise records the client never delivered)",
                       metadata: ["skipped": "\(new)", "total": "\(skipped)"])
    }

    /// Hands batches to the pool. One poll can cut many small batches at once (a thousand at
    /// batch size 1); they go out as one job per worker, each running its share in order, so
    /// the per-job cost (a dispatch, a wake-up) is paid per worker rather than per batch. Each
    /// batch is still classified, sent and timed on its own; its counts (labels, drops, routes)
    /// are added up over the job and recorded once.
    mutating func submit(_ batches: [[AdmittedRecord]]) {
        guard !batches.isEmpty else { return }
        if transactions != nil {
            ready += batches
            handOutReady()
        } else {
            dispatch(batches)
        }
    }

    /// Exactly-once: hands waiting batches to free workers; with `all`, every waiting batch (at
    /// shutdown). Their output belongs to the open transaction from here.
    mutating func handOutReady(all: Bool = false) {
        // Output sent now would join the transaction being committed without its offsets.
        guard transactions?.isCommitting != true else { return }
        let count = all ? ready.count : min(ready.count, pool.workers - pool.outstanding)
        guard count > 0 else { return }
        let batches = Array(ready.prefix(count))
        ready.removeFirst(count)
        for batch in batches {
            for record in batch { transactions?.handedOut(record.message.topicPartition, offset: record.message.offset) }
        }
        dispatch(batches)
    }

    /// Exactly-once: takes the waiting batches' records of these partitions out (revoked, or to
    /// be read again).
    mutating func removeReady(partitions: Set<TopicPartition>) -> [AdmittedRecord] {
        guard !ready.isEmpty else { return [] }
        var removed: [AdmittedRecord] = []
        ready = ready.compactMap { batch in
            let kept = batch.filter { !partitions.contains($0.message.topicPartition) }
            if kept.count < batch.count { removed += batch.filter { partitions.contains($0.message.topicPartition) } }
            return kept.isEmpty ? nil : kept
        }
        return removed
    }

    /// Runs batches on the pool (see ``submit(_:)``).
    private func dispatch(_ batches: [[AdmittedRecord]]) {
        let now = ContinuousClock.now
        let jobs = min(batches.count, pool.workers)
        for job in 0..<jobs {
            let share = stride(from: job, to: batches.count, by: jobs).map { batches[$0] }
            pool.submit { [pipeline, processor, transaction = clients.transaction] in
                var counts = BatchCounts()
                for batch in share {
                    let waited = (now - (batch.first?.admittedAt ?? now)) / .seconds(1)
                    let outcome = processor.process(batch)
                    pipeline.telemetry.observe(outcome, size: batch.count, waited: waited)
                    counts.add(outcome)
                }
                pipeline.telemetry.record(counts, transaction: transaction)
                let dropped = counts.dropped.values.reduce(0, +)
                if dropped > 0 { pipeline.counters.withLock { $0.dropped += dropped } }
            }
        }
    }

    /// Pauses every assigned partition while the in-flight limits are reached, or when a poll
    /// brought records that did not fit (`overflowed`: admission stops just short of the byte
    /// limit, so the load alone may never reach it), and resumes once the load has fallen to three
    /// quarters of the limits (so it does not flap at the edge).
    private mutating func applyBackpressure(overflowed: Bool) {
        let load = ledger.load
        let full = overflowed || load.messages >= settings.maxInflightMessages || load.bytes >= settings.maxInflightBytes
        let relieved = load.messages <= settings.maxInflightMessages * 3 / 4 && load.bytes <= settings.maxInflightBytes / 4 * 3
        switch flow {
        case .running where full:
            flow = .paused
            try? clients.consumer.pause(Array(assigned))
            logger.debug("in-flight limit reached: input paused", metadata: ["messages": "\(load.messages)", "bytes": "\(load.bytes)"])
        case .paused where relieved:
            flow = .running
            try? clients.consumer.resume(Array(assigned))
            // Resume where this loop stopped reading, not where librdkafka thinks it is: around
            // pause and resume librdkafka 2.0.2 can skip records it had fetched (#4208). Records
            // read twice are told apart by the ledger; records skipped would be lost.
            let positions = nextToRead.filter { assigned.contains($0.key) }
            do { try clients.consumer.seek(positions) } catch {
                logger.warning("could not seek to the read position after resuming", metadata: ["error": "\(error)"])
            }
            logger.debug("input resumed", metadata: ["messages": "\(load.messages)", "bytes": "\(load.bytes)"])
        default:
            break
        }
    }

    /// Stops reading and finishes what can be finished: in-flight batches within the drain
    /// timeout (none when delivery has failed for good), then the producer is flushed, offsets are
    /// committed and the group is left.
    mutating func drain(deliveryFailed: Bool) {
        logger.info("draining", metadata: ["in_flight": "\(ledger.load.messages)", "timeout": "\(settings.drainTimeout)"])
        telemetry.stopping()
        // Stop reading; what was read but not admitted is left for the next run.
        try? clients.consumer.pause(Array(assigned))
        flow = .draining
        // In a transaction that cannot commit, work handed out now would only be aborted.
        let canFinish = transactions.map { $0.isOpen && pipeline.failure == nil } ?? true
        if !batcher.isEmpty && canFinish { submit([batcher.take()]) }
        if canFinish { handOutReady(all: true) }
        // When delivery has failed for good there is nothing to wait for: what was delivered is
        // committed below and the rest is read again after a restart.
        let deadline = ContinuousClock.now + (deliveryFailed ? .zero : settings.drainTimeout)
        // Keep polling so the group keeps this member (and its commits) while batches finish.
        while ledger.load.messages > 0 && ContinuousClock.now < deadline && pipeline.failure == nil {
            telemetry.loopAlive()
            let batch = clients.consumer.poll(maxMessages: 1, timeout: .milliseconds(50))
            _ = handle(batch.events)
            // A commit left pending by an outage goes on, and once it ends the batches waiting
            // for it go out.
            if transactions?.isCommitting == true {
                _ = commitTransactionIfDue()
                if canFinish { handOutReady(all: true) }
            }
        }
        let left = ledger.load.messages
        if left > 0 {
            logger.warning("drain ended with records unfinished: their offsets are not committed, so they will be read again on restart",
                           metadata: ["unfinished": "\(left)", "by_partition": .string(ledger.unfinishedSummary())])
        }
        endTransactionForShutdown(deadline: deadline)
        // Records still failing now are not re-sent: the producer closes. Workers still running
        // after the drain timeout find it closed and leave their records unfinished.
        clients.sender.stop()
        clients.producer.close(timeout: max(.seconds(1), deadline - .now))
        do { try clients.consumer.commit(timeout: .seconds(5)) } catch {
            logger.warning("final offset commit failed; some records may be read again on restart", metadata: ["error": "\(error)"])
        }
        clients.consumer.close()
        pipeline.logProgress(inFlight: ledger.load.messages, workerBusy: pool.busyRatio)
    }
}

/// The poll loop's state belongs to one thread.
@available(*, unavailable)
extension PollLoop: Sendable {}
