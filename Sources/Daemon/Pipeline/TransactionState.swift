import Synchronization

/// What the threads that send output tell the poll loop about the open transaction
/// (exactly-once delivery): whether a delivery in it failed, so it cannot commit.
///
/// In a transaction a failed delivery is not sent again on its own: librdkafka would fail the
/// commit anyway (any failed record makes the transaction abortable), so the whole transaction is
/// aborted and its input read again. The delivery thread and the workers mark it here; the poll
/// loop reads and clears the mark when it ends the transaction.
///
/// It also holds the open transaction's output counts (``Tally``): the metrics of what was
/// produced, dead-lettered, labelled, dropped and routed count only committed transactions,
/// so a dashboard counting labels sees each input once, as a `read_committed` reader does.
final class TransactionState: Sendable {
    /// Why the open transaction cannot commit, and whether the cluster refused this client.
    struct Doom: Sendable {
        let reason: String
        let denied: Bool
    }

    /// The open transaction's output, counted as it happens and published when it commits.
    struct Tally: Sendable {
        /// Deliveries confirmed, per destination topic.
        var produced: [String: Int] = [:]
        /// Dead letters delivered, per error code.
        var deadLettered: [String: Int] = [:]
        /// Labels, drops and routes of the batches run.
        var batches = BatchCounts()
        /// Outputs in all (what an abort discards).
        var outputs: Int { produced.values.reduce(0, +) }
    }

    private let doomed = Mutex<Doom?>(nil)
    private let tally = Mutex(Tally())

    /// Adds to the open transaction's counts (delivery thread and workers).
    func count(_ update: (inout Tally) -> Void) {
        tally.withLock { update(&$0) }
    }

    /// The counts of the transaction that just ended, clearing them for the next one.
    func takeTally() -> Tally {
        tally.withLock { current in
            defer { current = Tally() }
            return current
        }
    }

    /// Marks the open transaction as unable to commit; the first reason is kept. `denied`: the
    /// cluster refused this client (an ACL, credentials), which retrying alone will not fix.
    func doom(_ reason: String, denied: Bool = false) {
        doomed.withLock { current in
            if current == nil { current = Doom(reason: reason, denied: denied) }
        }
    }

    /// Why the open transaction cannot commit, clearing the mark for the next one.
    func takeDoom() -> Doom? {
        doomed.withLock { current in
            defer { current = nil }
            return current
        }
    }
}
