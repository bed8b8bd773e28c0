import Foundation
import Synchronization

/// Keeps a librdkafka handle alive while calls are inside it, and refuses calls once it is closing.
///
/// librdkafka's handles are thread-safe for produce, offset store and pause, but not against
/// `rd_kafka_destroy`: a worker still sending, or a delivery report still storing an offset, after
/// a drain timed out would touch freed memory. Every such call runs inside ``enter(_:)``, which
/// fails once ``close()`` has begun; `close` returns only when no call is inside, so the handle can
/// then be destroyed safely. One atomic word holds both the closing bit and the count of calls in.
final class HandleGuard: Sendable {
    private static let closingBit = 1 << 62
    private let state = Atomic<Int>(0)

    /// Runs `body` unless the handle is closing; returns nil (without running it) if it is.
    func enter<Result, Failure: Error>(_ body: () throws(Failure) -> Result) throws(Failure) -> Result? {
        let before = state.add(1, ordering: .acquiringAndReleasing).oldValue
        defer { state.subtract(1, ordering: .acquiringAndReleasing) }
        guard before & Self.closingBit == 0 else { return nil }
        return try body()
    }

    /// Runs `body` unless the handle is closing; if it is, throws an ``KafkaError/Kind/invalidUse``
    /// error saying which client is closed and what could not be done.
    func run<Result>(_ client: String, _ what: @autoclosure () -> String,
                     _ body: () throws(KafkaError) -> Result) throws(KafkaError) -> Result {
        guard let result = try enter(body) else {
            throw KafkaError(kind: .invalidUse, message: "the \(client) is closed: could not \(what())")
        }
        return result
    }

    /// Marks the handle closing and waits until every call inside has left. Returns false if it
    /// was already closing (another caller owns the close).
    func close() -> Bool {
        let before = state.bitwiseOr(Self.closingBit, ordering: .acquiringAndReleasing).oldValue
        guard before & Self.closingBit == 0 else { return false }
        while state.load(ordering: .acquiring) != Self.closingBit {
            Thread.sleep(forTimeInterval: 0.0005)  // calls inside are one librdkafka call each: short
        }
        return true
    }
}
