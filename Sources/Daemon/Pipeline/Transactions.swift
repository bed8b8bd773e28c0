import Kafka
import Logging

/// The poll loop's side of exactly-once delivery: one Kafka transaction open at a time, holding
/// the output of the records handed to workers since it began; on the cadence it commits that
/// output together with the input offsets it finishes.
///
/// Why the offsets are exact: the poll loop ends a transaction only when no batch is running
/// (``PollLoop/waitForWorkers()``), so every record handed to a worker has had its output sent,
/// and records reach workers in offset order per partition (admission and the batcher keep it).
/// The records handed out therefore form a prefix of each partition, and the offset after the
/// last one is the offset to commit: nothing before it lacks output, nothing after it has any.
///
/// Used on the poll loop's thread only.
struct Transactions {
    /// How a transaction ended.
    enum Outcome {
        case committed
        /// Aborted: reading must restart at these offsets (the first record of the aborted
        /// transaction in each partition), so the records are processed again.
        case aborted(restartAt: [TopicPartition: Int64])
        /// The producer cannot go on (fenced, or a fatal error): the daemon must stop.
        case fatal(String)
        /// The commit could not finish for a passing reason (brokers unreachable): call
        /// ``commit()`` again after polling; nothing may be handed out meanwhile.
        case pending
    }

    let producer: KafkaProducer
    let consumer: KafkaConsumer
    let state: TransactionState
    let interval: Duration
    let transactionalID: String
    let telemetry: Telemetry
    let logger: Logger
    /// How long one transactional call may block the poll loop before it is tried again.
    private let callTimeout: Duration = .seconds(5)
    /// Retriable failures of one step in a row before the transaction is aborted instead.
    private let retriesPerStep = 6

    /// Set at shutdown: retriable steps are not tried again after it, so a stop during a broker
    /// outage still ends well within systemd's TimeoutStopSec.
    var retryDeadline: ContinuousClock.Instant?
    /// Transactions aborted in a row because the cluster refused this client's output.
    private var deniedInARow = 0

    /// A commit under way that met a passing failure: what it commits, and how far it got.
    private struct PendingCommit {
        let offsets: [TopicPartition: Int64]
        let group: ConsumerGroupMetadata
        let started: ContinuousClock.Instant
        var offsetsSent = false
        var attempts = 0
    }

    private var pendingCommit: PendingCommit?

    /// Whether a commit is under way (``Outcome/pending``): hand nothing out until it ends.
    var isCommitting: Bool { pendingCommit != nil }

    private(set) var isOpen = false
    private var openedAt = ContinuousClock.now
    /// Per partition, the offset after the last record handed to a worker in this transaction.
    private var handedOutThrough: [TopicPartition: Int64] = [:]
    /// Per partition, where reading restarts if this transaction aborts: the first record taken
    /// in since the last commit (records admitted but still in the batcher included).
    private var restartAt: [TopicPartition: Int64] = [:]

    init(producer: KafkaProducer, consumer: KafkaConsumer, state: TransactionState, interval: Duration,
         transactionalID: String, telemetry: Telemetry, logger: Logger) {
        self.producer = producer
        self.consumer = consumer
        self.state = state
        self.interval = interval
        self.transactionalID = transactionalID
        self.telemetry = telemetry
        self.logger = logger
    }

    /// A record was taken into the pipeline.
    mutating func admitted(_ partition: TopicPartition, offset: Int64) {
        if restartAt[partition] == nil { restartAt[partition] = offset }
    }

    /// A record was handed to a worker: its output belongs to the open transaction.
    mutating func handedOut(_ partition: TopicPartition, offset: Int64) {
        handedOutThrough[partition] = max(handedOutThrough[partition] ?? 0, offset + 1)
    }

    /// Partitions revoked or assigned afresh: what was known about them no longer applies.
    mutating func forget(_ partitions: Set<TopicPartition>) {
        for partition in partitions {
            handedOutThrough[partition] = nil
            restartAt[partition] = nil
        }
    }

    /// Whether the open transaction should commit now: it holds output and its interval passed.
    func isDue(now: ContinuousClock.Instant) -> Bool {
        isOpen && !handedOutThrough.isEmpty && now - openedAt >= interval
    }

    /// How long until the open transaction is due (zero if it is), nil while it holds nothing.
    func timeUntilDue(now: ContinuousClock.Instant) -> Duration? {
        guard isOpen, !handedOutThrough.isEmpty else { return nil }
        return max(.zero, interval - (now - openedAt))
    }

    /// Whether the open transaction holds anything to commit.
    var hasWork: Bool { !handedOutThrough.isEmpty }

    /// Opens the next transaction. Returns why the daemon must stop, if it cannot.
    mutating func begin() -> String? {
        do {
            try producer.beginTransaction()
        } catch {
            return reason(error, doing: "begin a transaction")
        }
        isOpen = true
        openedAt = .now
        return nil
    }

    /// Commits the open transaction with the offsets it finishes. Call only while no batch
    /// runs. On an abortable failure it aborts and says where to read again; on a passing one
    /// it returns ``Outcome/pending``, and the next call resumes the commit.
    mutating func commit() -> Outcome {
        if pendingCommit == nil {
            if let doomed = state.takeDoom() {
                deniedInARow = doomed.denied ? deniedInARow + 1 : 0
                if deniedInARow >= RecordSender.deniedAttempts {
                    return .fatal("\(doomed.reason): refused in \(deniedInARow) transactions in a row; grant this client WRITE on the topic, or fix its credentials; the open transaction's records will be read again after a restart")
                }
                return abort(reason: "error", because: doomed.reason)
            }
            deniedInARow = 0
            do {
                // One group metadata for every try: librdkafka asks for identical arguments when
                // the call is retried.
                pendingCommit = PendingCommit(offsets: handedOutThrough, group: try consumer.groupMetadata(), started: .now)
            } catch {
                return abort(reason: "error", because: "\(error)")
            }
        }
        guard var pending = pendingCommit else { return .pending }
        do {
            if !pending.offsetsSent {
                try producer.sendOffsets(pending.offsets, group: pending.group, timeout: callTimeout)
                pending.offsetsSent = true
            }
            try producer.commitTransaction(timeout: callTimeout)
        } catch where error.retriable && retryDeadline.map({ ContinuousClock.now < $0 }) ?? true {
            // Brokers unreachable, a coordinator moving: librdkafka resumes the commit (and takes
            // the offsets again) on the next call; the poll loop keeps polling meanwhile.
            pending.attempts += 1
            pendingCommit = pending
            let level: Logger.Level = pending.attempts == 1 || pending.attempts % 10 == 0 ? .warning : .debug
            logger.log(level: level, "the transaction's commit did not finish for a passing reason; trying again",
                       metadata: ["attempt": "\(pending.attempts)", "error": "\(error)"])
            return .pending
        } catch {
            pendingCommit = nil
            // Only a fatal error ends the producer; anything else (abortable, or unflagged, such
            // as a rebalance under way) is met with an abort, which fails in turn if the
            // producer cannot go on.
            if error.kind == .fatal {
                return .fatal(reason(error, doing: "commit a transaction"))
            }
            return abort(reason: "error", because: "\(error)")
        }
        pendingCommit = nil
        isOpen = false
        telemetry.metrics.transactionCommitted(seconds: (ContinuousClock.now - pending.started) / .seconds(1))
        telemetry.committed(state.takeTally())
        // Partitions revoked while the commit was under way are forgotten: no restart point.
        for (partition, next) in pending.offsets where handedOutThrough[partition] != nil { restartAt[partition] = next }
        handedOutThrough = [:]
        // A delivery that failed after commit began cannot have been in this transaction's
        // success: the commit would have failed. Clear any late mark.
        _ = state.takeDoom()
        return .committed
    }

    /// Aborts the open transaction (call only while no batch runs); its output is discarded and
    /// its records must be read again from the returned offsets.
    mutating func abort(reason label: String, because why: String) -> Outcome {
        let restart = restartAt
        logger.warning("aborting the transaction: its records will be read and processed again",
                       metadata: ["reason": .string(why), "partitions": "\(restart.count)"])
        do {
            try retrying("abort") { () throws(KafkaError) in try producer.abortTransaction(timeout: callTimeout) }
        } catch {
            return .fatal(reason(error, doing: "abort a transaction"))
        }
        isOpen = false
        _ = state.takeDoom()
        // Its output is discarded and does not count (the records read again will). Taken once
        // the abort returned: librdkafka has then reported every delivery of the transaction.
        let discarded = state.takeTally().outputs
        if discarded > 0 { logger.info("aborted transaction's output discarded", metadata: ["outputs": "\(discarded)"]) }
        telemetry.metrics.transactionAborted(reason: label)
        handedOutThrough = [:]
        restartAt = [:]
        return .aborted(restartAt: restart)
    }

    /// Runs a transactional step, again after retriable failures (librdkafka resumes it), up
    /// to ``retriesPerStep`` times; the watchdog is fed between tries.
    private func retrying(_ step: String, _ body: () throws(KafkaError) -> Void) throws(KafkaError) {
        var attempt = 0
        while true {
            do {
                try body()
                return
            } catch where error.retriable && attempt + 1 < retriesPerStep && retryDeadline.map({ ContinuousClock.now < $0 }) ?? true {
                attempt += 1
                telemetry.loopAlive()
                logger.info("transaction step failed for a passing reason; trying again", metadata: [
                    "step": .string(step), "attempt": "\(attempt)", "error": "\(error)"])
            }
        }
    }

    /// The message a fatal transactional error stops the daemon with.
    private func reason(_ error: KafkaError, doing what: String) -> String {
        let fatal = producer.fatalError ?? error
        if fatal.isFencing || error.isFencing {
            return Self.fencedMessage(transactionalID)
        }
        return "could not \(what) (\(error)); exactly-once delivery cannot go on: records of the open transaction will be read again after a restart"
    }

    /// Why a fenced instance stops, and what to do.
    static func fencedMessage(_ transactionalID: String) -> String {
        "fenced: another producer took over transactional id \(transactionalID) (a newer instance with the same transactional-id started); "
            + "this instance stops, and its open transaction is aborted. Give every instance its own transactional-id"
    }
}
