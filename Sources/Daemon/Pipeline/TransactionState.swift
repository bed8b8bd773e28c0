import Synchronization

/// What the threads that send output tell the poll loop about the open transaction
/// (exactly-once delivery): whether a delivery in it failed, so it cannot commit.
///
/// In a transaction a failed delivery is not sent again on its own: librdkafka would fail the
/// commit anyway (any failed record makes the transaction abortable), so the whole transaction is
/// aborted and its input read again. The delivery thread and the workers mark it here; the poll
/// loop reads and clears the mark when it ends the transaction.
final class TransactionState: Sendable {
    /// Why the open transaction cannot commit, and whether the cluster refused this client.
    struct Doom: Sendable {
        let reason: String
        let denied: Bool
    }

    private let doomed = Mutex<Doom?>(nil)

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
