import Kafka
import Synchronization

/// What the pipeline owes Kafka: every record read and not yet finished, the output records
/// waiting for delivery, and the offsets that may be stored.
///
/// A record is finished when its one output (labelled, routed or dead-letter record) is delivered,
/// or at once when it is dropped by `--drop-when`. Only then does its offset count, and only as
/// part of the contiguous finished prefix of its partition (``OffsetTracker``). Offsets are
/// stored under the ledger's lock so two delivery threads can never store out of order.
final class InFlightLedger: Sendable {
    /// A produced record awaiting its delivery report.
    struct Pending: Sendable {
        let message: ConsumedMessage
        let epoch: UInt64
        let kind: OutputKind
        /// The record sent, kept to retry it.
        let record: ProducerRecord
        /// How many times this output was sent before and failed (0 on the first send).
        let attempt: Int
        /// How many of the latest failures in a row were refusals (authorization, credentials).
        var refusals = 0
    }

    enum OutputKind: Sendable { case labelled, routed, deadLetter }

    private struct State {
        var tracker = OffsetTracker()
        var epochs: [TopicPartition: UInt64] = [:]
        var nextEpoch: UInt64 = 1
        var pending: [UInt64: Pending] = [:]
        var nextToken: UInt64 = 1
        var messages = 0
        var bytes = 0
        var moves: UInt64 = 0
    }

    private let state = Mutex(State())
    private let storeOffset: @Sendable (TopicPartition, Int64) -> Void

    /// - Parameter storeOffset: stores the next offset to read for a partition (called under the lock).
    init(storeOffset: @escaping @Sendable (TopicPartition, Int64) -> Void) {
        self.storeOffset = storeOffset
    }

    /// Starts a new ownership epoch for newly assigned partitions. A partition assigned again
    /// without being revoked in between (a rebalance whose revoke was lost) starts afresh too:
    /// results of its old epoch are dropped, and its offsets are tracked from wherever reading
    /// restarts, so records read again are not mistaken for redeliveries.
    func assigned(_ partitions: [TopicPartition]) {
        state.withLock { s in
            s.tracker.forget(partitions)
            for partition in partitions {
                s.epochs[partition] = s.nextEpoch
                s.nextEpoch += 1
            }
        }
    }

    /// Forgets revoked partitions: their unfinished records are left for the next owner, and
    /// results that arrive for them later are dropped, not stored.
    func revoked(_ partitions: [TopicPartition]) {
        state.withLock { s in
            s.tracker.forget(partitions)
            for partition in partitions { s.epochs[partition] = nil }
        }
    }

    /// The current epoch of a partition, nil if it is not assigned.
    func epoch(of partition: TopicPartition) -> UInt64? {
        state.withLock { $0.epochs[partition] }
    }

    /// Takes records in. Returns each one's epoch, or nil where its partition is no longer
    /// assigned (or the record is a redelivery). One lock for a whole poll's worth of records:
    /// at batch size 1 the lock is otherwise the daemon's most contended spot.
    func admit(_ messages: ArraySlice<ConsumedMessage>) -> [UInt64?] {
        state.withLock { s in
            messages.map { message in
                guard let epoch = s.epochs[message.topicPartition],
                      s.tracker.track(message.topicPartition, offset: message.offset) else { return nil }
                s.messages += 1
                s.bytes += message.byteCount
                s.moves += 1
                return epoch
            }
        }
    }

    /// Registers an output record about to be sent; returns the token for its delivery report,
    /// or nil when its partition was revoked since (then nothing is sent).
    func willSend(_ message: ConsumedMessage, epoch: UInt64, kind: OutputKind, record: ProducerRecord, attempt: Int = 0, refusals: Int = 0) -> UInt64? {
        state.withLock { s in
            guard s.epochs[message.topicPartition] == epoch else {
                release(&s, message)
                return nil
            }
            let token = s.nextToken
            s.nextToken += 1
            s.pending[token] = Pending(message: message, epoch: epoch, kind: kind, record: record, attempt: attempt, refusals: refusals)
            return token
        }
    }

    /// Takes the record behind a token: when its delivery report arrives, or when its send
    /// failed before reaching the producer.
    func takePending(token: UInt64) -> Pending? {
        state.withLock { $0.pending.removeValue(forKey: token) }
    }

    /// A delivery report: takes the record behind the token and, when its output was delivered,
    /// finishes it too, under one lock (the delivery thread does this for every record).
    func settle(token: UInt64, delivered: Bool) -> Pending? {
        state.withLock { s in
            guard let pending = s.pending.removeValue(forKey: token) else { return nil }
            if delivered { finish(&s, pending.message, epoch: pending.epoch) }
            return pending
        }
    }

    /// Marks a record finished (its output is delivered, or it needs none) and stores the offset
    /// if the finished prefix of its partition grew.
    func finish(_ message: ConsumedMessage, epoch: UInt64) {
        state.withLock { s in finish(&s, message, epoch: epoch) }
    }

    private func finish(_ s: inout State, _ message: ConsumedMessage, epoch: UInt64) {
        release(&s, message)
        s.moves += 1
        guard s.epochs[message.topicPartition] == epoch,
              let next = s.tracker.finish(message.topicPartition, offset: message.offset) else { return }
        storeOffset(message.topicPartition, next)
    }

    /// Lets go of a record that will not be finished here (its partition was revoked).
    func abandon(_ message: ConsumedMessage) {
        state.withLock { release(&$0, message) }
    }

    private func release(_ s: inout State, _ message: ConsumedMessage) {
        s.messages -= 1
        s.bytes -= message.byteCount
    }

    /// The unfinished records by partition, for the log at shutdown: `posts[0] from 1812 (40)`.
    func unfinishedSummary() -> String {
        state.withLock { s in
            s.tracker.unfinished.map { "\($0.partition) from \($0.from) (\($0.count))" }.joined(separator: ", ")
        }
    }

    /// Offsets skipped between consecutive records of a partition so far (``OffsetTracker/skippedOffsets``).
    var skippedOffsets: Int64 { state.withLock { $0.tracker.skippedOffsets } }

    /// Records taken in plus records finished, since start: while it stands still, nothing moves.
    var moves: UInt64 { state.withLock { $0.moves } }

    /// Records read and not yet finished, and their bytes.
    var load: (messages: Int, bytes: Int) {
        state.withLock { ($0.messages, $0.bytes) }
    }
}
