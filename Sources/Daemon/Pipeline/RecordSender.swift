import Dispatch
import Kafka
import Logging
import Synchronization

/// What the daemon does about an output record the producer could not deliver.
///
/// The rule: the cluster having a bad minute never diverts or loses a record. Only a failure that
/// is about the record itself sends it elsewhere, and only a failure of the client ends the daemon.
enum DeliveryFailureAction: Equatable {
    /// The cluster had a bad moment (a broker down, a leader moving, a delivery timeout, not
    /// enough replicas): send the same record again after a backoff. Its offset waits.
    case retry
    /// The cluster refuses this client (an ACL, credentials, TLS): send again after a backoff, a
    /// bounded number of times, then stop the daemon with the reason (an operator must act).
    case retryThenStop
    /// The broker will never take this record (too large, invalid): a labelled record is
    /// dead-lettered instead; a dead-letter record is reduced to its coordinates and reason.
    case rejectRecord
    /// The producer cannot go on (librdkafka's fatal error): the daemon drains and exits 2.
    case stop
    /// The producer is closing: the record stays unfinished, its offset unstored, and it is read
    /// again after a restart.
    case abandon

    init(_ error: KafkaError) {
        switch error.kind {
        case .fatal: self = .stop
        case .denied: self = .retryThenStop
        case .messageTooLarge, .recordRejected: self = .rejectRecord
        case .invalidUse:
            // A closed producer or a purge at close (librdkafka reports those as _DESTROY or as
            // the purge codes): the record is left for the next run. Other misuse (an unknown
            // partition) is about the record.
            self = error.code == 0 || error.codeName == "_DESTROY" ? .abandon : .rejectRecord
        case .transient, .queueFull, .offsetOutOfRange, .configuration, .abortable:
            self = error.codeName.hasPrefix("_PURGE") ? .abandon : .retry
        }
    }
}

/// Sends output records and sees each input record's one output through to delivery: transient
/// failures are re-sent with a backoff (the offset waits meanwhile), a labelled record the broker
/// rejects for good goes to the dead-letter topic, a dead-letter record the broker rejects is sent
/// again reduced, and what cannot be fixed by retrying stops the daemon through `onFatal`.
final class RecordSender: Sendable {
    /// Backoff before the n-th re-send, in milliseconds: 250 doubling up to 30 s, so an outage
    /// of minutes costs a retry every 30 s per record, not a busy loop.
    static func backoffMilliseconds(attempt: Int) -> Int {
        min(30_000, 250 << min(attempt, 7))
    }

    /// Refusals in a row (`retryThenStop` failures) that stop the daemon: about a minute of backoff
    /// when they come from the first send.
    static let deniedAttempts = 8

    private let producer: KafkaProducer
    private let ledger: InFlightLedger
    private let dlqTopic: String
    /// Set in exactly-once delivery: a failed output dooms the open transaction instead of being
    /// sent again (see ``TransactionState``).
    private let transaction: TransactionState?
    private let logger: Logger
    private let retryQueue = DispatchQueue(label: "postclassd.retry")
    private let stopped = Atomic<Bool>(false)
    private let onDelivered: @Sendable (InFlightLedger.Pending, DeliveryReport, TransactionState?) -> Void
    private let onRetry: @Sendable (String, KafkaError) -> Void
    private let onFatal: @Sendable (String) -> Void

    /// - Parameters:
    ///   - onDelivered: a record's output was delivered (on the delivery thread), with the
    ///     open transaction's state in exactly-once delivery.
    ///   - onRetry: an output to this topic is sent again after this error.
    ///   - onFatal: delivery cannot go on; the text says why and what to do.
    init(producer: KafkaProducer, ledger: InFlightLedger, dlqTopic: String, transaction: TransactionState? = nil, logger: Logger,
         onDelivered: @escaping @Sendable (InFlightLedger.Pending, DeliveryReport, TransactionState?) -> Void,
         onRetry: @escaping @Sendable (String, KafkaError) -> Void,
         onFatal: @escaping @Sendable (String) -> Void) {
        self.producer = producer
        self.ledger = ledger
        self.dlqTopic = dlqTopic
        self.transaction = transaction
        self.logger = logger
        self.onDelivered = onDelivered
        self.onRetry = onRetry
        self.onFatal = onFatal
    }

    /// Stops re-sending: called when the producer is about to close. Records that fail from now
    /// on are left unfinished (read again after a restart).
    func stop() {
        stopped.store(true, ordering: .releasing)
    }

    func send(_ record: ProducerRecord, for source: AdmittedRecord, kind: InFlightLedger.OutputKind, attempt: Int = 0, refusals: Int = 0) {
        guard let token = ledger.willSend(source.message, epoch: source.epoch, kind: kind, record: record, attempt: attempt, refusals: refusals) else { return }
        do {
            try producer.send(record, token: token, timeout: .seconds(60))
        } catch {
            // Never queued: take the registration back and handle it like a failed delivery.
            guard let pending = ledger.takePending(token: token) else { return }
            handleFailure(pending, error: error, synchronous: true)
        }
    }

    func deadLetter(_ source: AdmittedRecord, reason: DeadLetterReason) {
        send(OutputRecord.deadLetter(source.message, reason: reason, topic: dlqTopic), for: source, kind: .deadLetter)
    }

    /// Called on the producer's delivery thread: must not block.
    func handle(_ report: DeliveryReport) {
        guard let pending = ledger.settle(token: report.token, delivered: report.error == nil) else { return }
        if let error = report.error {
            handleFailure(pending, error: error, synchronous: false)
            return
        }
        onDelivered(pending, report, transaction)
    }

    /// - Parameter synchronous: the send itself failed (on the worker sending it), rather than
    ///   the delivery (on the delivery thread).
    private func handleFailure(_ pending: InFlightLedger.Pending, error: KafkaError, synchronous: Bool) {
        let source = AdmittedRecord(message: pending.message, epoch: pending.epoch)
        let origin = "\(pending.message.topicPartition)@\(pending.message.offset)"
        var action = DeliveryFailureAction(error)
        if stopped.load(ordering: .acquiring) { action = .abandon }
        // In a transaction nothing is sent again later, from another thread: it could land in
        // the next transaction without its input's offset. A labelled record the producer
        // refuses at once (too large) is still dead-lettered here, on the worker, inside the
        // transaction; every other failure dooms the transaction, which is aborted and redone.
        if let transaction, !(synchronous && action == .rejectRecord && pending.kind != .deadLetter && error.codeName != "_STATE") {
            ledger.abandon(pending.message)
            switch action {
            case .abandon:
                break  // purged by an abort or at close: the record is read again anyway
            case .stop:
                onFatal("the Kafka producer failed for good (\(error)); records of the open transaction will be read again after a restart")
            case .retry, .retryThenStop, .rejectRecord:
                transaction.doom("output for \(origin) to \(pending.record.topic) failed: \(error)", denied: action == .retryThenStop)
            }
            return
        }
        switch action {
        case .abandon:
            ledger.abandon(pending.message)
        case .stop:
            ledger.abandon(pending.message)
            onFatal("the Kafka producer failed for good (\(error)); records not yet delivered will be read again after a restart")
        case .retry, .retryThenStop:
            // Refusals count only while they come in a row: passing failures between them (the
            // broker down for a while) reset the count.
            let refusals = action == .retryThenStop ? pending.refusals + 1 : 0
            if refusals >= Self.deniedAttempts {
                ledger.abandon(pending.message)
                onFatal("topic \(pending.record.topic) refused \(Self.deniedAttempts) writes in a row (\(error)): grant this client WRITE on it, or fix its credentials; unfinished records will be read again after a restart")
                return
            }
            let delay = Self.backoffMilliseconds(attempt: pending.attempt)
            // Warn on the first failure of a record and then rarely, not on every retry of an outage.
            let level: Logger.Level = pending.attempt == 0 || pending.attempt % 10 == 9 ? .warning : .debug
            logger.log(level: level, "delivery failed; sending again (the input offset waits)", metadata: [
                "source": .string(origin), "topic": .string(pending.record.topic), "attempt": "\(pending.attempt + 1)",
                "retry_in_ms": "\(delay)", "error": "\(error)"])
            onRetry(pending.record.topic, error)
            resend(pending.record, for: source, kind: pending.kind, attempt: pending.attempt + 1, refusals: refusals, afterMilliseconds: delay)
        case .rejectRecord:
            if pending.kind != .deadLetter {
                logger.warning("the broker rejected a labelled record for good; dead-lettering its input", metadata: [
                    "source": .string(origin), "topic": .string(pending.record.topic), "error": "\(error)"])
                deadLetter(source, reason: DeadLetterReason(code: "output_rejected",
                    message: "the broker refused the output record for \(pending.record.topic) for good: \(error)"))
                return
            }
            guard let reduced = OutputRecord.reducedDeadLetter(pending.record, error: error) else {
                ledger.abandon(pending.message)
                onFatal("the dead-letter topic \(pending.record.topic) refused even a record without the input's bytes (\(error)): check its max.message.bytes and the broker's limits; unfinished records will be read again after a restart")
                return
            }
            logger.error("the broker rejected a dead-letter record; sending it again without the input's bytes", metadata: [
                "source": .string(origin), "error": "\(error)"])
            resend(reduced, for: source, kind: .deadLetter, attempt: pending.attempt + 1, refusals: 0, afterMilliseconds: 0)
        }
    }

    private func resend(_ record: ProducerRecord, for source: AdmittedRecord, kind: InFlightLedger.OutputKind, attempt: Int, refusals: Int,
                        afterMilliseconds delay: Int) {
        // The record stays in the ledger's in-flight count while it waits (a failed delivery does
        // not release it), so the in-flight limits and the drain still see it.
        retryQueue.asyncAfter(deadline: .now() + .milliseconds(delay)) {
            if self.stopped.load(ordering: .acquiring) {
                self.ledger.abandon(source.message)
                return
            }
            self.send(record, for: source, kind: kind, attempt: attempt, refusals: refusals)
        }
    }
}
