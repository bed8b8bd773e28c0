import Foundation
import Kafka

/// Exactly-once delivery in the poll loop: when the open transaction ends (on its cadence, on a
/// rebalance, at shutdown), and what is read again after an abort.
extension PollLoop {
    /// Waits until no batch runs, so every record handed to a worker has had its output sent
    /// (see ``Transactions``), feeding the watchdog. Returns false if `deadline` came first.
    @discardableResult
    func waitForWorkers(until deadline: ContinuousClock.Instant? = nil) -> Bool {
        while pool.outstanding > 0 {
            if let deadline, ContinuousClock.now >= deadline { return false }
            telemetry.loopAlive()
            Thread.sleep(forTimeInterval: 0.0005)
        }
        return true
    }

    /// Exactly-once: while batches wait and every worker is busy, waits until a worker is free
    /// (or the transaction is due, or 100 ms pass, so the consumer is still polled).
    func waitForFreeWorkerIfNeeded() {
        guard !ready.isEmpty, pool.outstanding >= pool.workers, transactions?.isCommitting != true else { return }
        let wait = min(transactions?.timeUntilDue(now: .now) ?? .milliseconds(100), .milliseconds(100))
        _ = workerFreed.wait(timeout: .now() + .nanoseconds(Int(max(0, wait / .nanoseconds(1)))))
    }

    /// Commits the open transaction if its interval has passed. Returns an error when the daemon
    /// must stop.
    mutating func commitTransactionIfDue() -> PipelineError? {
        guard let tx = transactions, tx.isCommitting || tx.isDue(now: .now) else { return nil }
        waitForWorkers()
        guard let outcome = transactions?.commit() else { return nil }
        if case .pending = outcome { return nil }
        return settle(outcome)
    }

    /// Aborts the open transaction (partitions revoked, or assigned afresh) and reads its
    /// records again in the next one. Returns an error when the daemon must stop.
    mutating func abortTransaction(reason: String, because why: String) -> PipelineError? {
        // A commit under way cannot be aborted (librdkafka refuses it): it ends either way, and
        // then commits the revoked partitions' output together with their offsets, or neither.
        guard transactions?.isOpen == true, transactions?.isCommitting != true else { return nil }
        waitForWorkers()
        guard let outcome = transactions?.abort(reason: reason, because: why) else { return nil }
        return settle(outcome)
    }

    /// Ends the last transaction at shutdown: commits it when every batch finished (within the
    /// drain timeout) and delivery has not failed, aborts it otherwise.
    mutating func endTransactionForShutdown(deadline: ContinuousClock.Instant) {
        // A transaction that holds nothing has nothing at the coordinator either (librdkafka
        // begins one locally): nothing to end.
        guard transactions?.isOpen == true, transactions?.hasWork == true else { return }
        transactions?.retryDeadline = .now + .seconds(10)
        let outcome: Transactions.Outcome?
        if pipeline.failure == nil && waitForWorkers(until: deadline) {
            var result = transactions?.commit()
            while case .pending? = result {
                telemetry.loopAlive()
                result = transactions?.commit()
            }
            outcome = result
        } else {
            let why = pipeline.failure ?? "batches still running at the end of the drain"
            outcome = transactions?.abort(reason: "shutdown", because: why)
        }
        switch outcome {
        case .committed?:
            logger.info("last transaction committed")
        case .aborted?:
            logger.warning("last transaction aborted: its records will be read again on restart")
        case .pending?:
            break  // the loop above ends only past it
        case .fatal(let reason)?:
            logger.warning("last transaction not ended: \(reason); the coordinator aborts it when transaction.timeout.ms passes or when this transactional id starts again")
        case nil:
            break
        }
    }

    /// After a commit or an abort: reads an aborted transaction's records again, then opens the
    /// next transaction.
    private mutating func settle(_ outcome: Transactions.Outcome) -> PipelineError? {
        switch outcome {
        case .fatal(let reason):
            pipeline.fail(reason)
            return .deliveryStopped(reason: reason)
        case .aborted(let restartAt):
            readAgain(from: restartAt)
        case .committed:
            break
        case .pending:
            return nil
        }
        if let reason = transactions?.begin() {
            pipeline.fail(reason)
            return .deliveryStopped(reason: reason)
        }
        return nil
    }

    /// Moves reading back to the first record of the aborted transaction in each partition
    /// still assigned. Records of the old reading (in the batcher, or in flight in the ledger)
    /// are let go, and the ledger starts the partitions afresh, so the records read again are
    /// not taken for redeliveries.
    private mutating func readAgain(from restartAt: [TopicPartition: Int64]) {
        let positions = restartAt.filter { assigned.contains($0.key) }
        guard !positions.isEmpty else { return }
        let partitions = Set(positions.keys)
        for record in batcher.remove(partitions: partitions) + removeReady(partitions: partitions) { ledger.abandon(record.message) }
        ledger.assigned(Array(partitions))
        for (partition, offset) in positions { nextToRead[partition] = offset }
        do {
            try clients.consumer.seek(positions)
        } catch {
            // Without the seek the records after the aborted ones would be read as if the
            // aborted ones were done: stop rather than lose them.
            pipeline.fail("could not move reading back after an aborted transaction (\(error)); the records will be read again after a restart")
        }
    }
}
