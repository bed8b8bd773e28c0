@testable import postclassd
import Kafka
import Synchronization
import Testing

/// The ledger's ownership epochs: results from an old assignment never store offsets, and a
/// partition assigned afresh tracks its records from scratch.
@Suite struct InFlightLedgerTests {
    private let partition = TopicPartition(topic: "posts", partition: 0)

    private func message(_ offset: Int64) -> ConsumedMessage {
        ConsumedMessage(topicPartition: partition, offset: offset, key: nil, value: Array("{}".utf8), headers: [], timestampMs: nil)
    }

    @Test("assigned again without a revoke: records read again are admitted, old results store nothing, the load stays exact")
    func reassignmentWithoutRevokeStartsAfresh() throws {
        let stored = Mutex<[Int64]>([])
        let ledger = InFlightLedger { _, next in stored.withLock { $0.append(next) } }
        ledger.assigned([partition])
        let old = ledger.admit([message(0), message(1), message(2)][...])
        let oldEpoch = try #require(old[0])
        ledger.finish(message(0), epoch: oldEpoch)
        #expect(stored.withLock { $0 } == [1])

        // The rebalance's revoke never came; reading restarts at the committed offset 1.
        ledger.assigned([partition])
        let again = ledger.admit([message(1), message(2)][...])
        #expect(again.allSatisfy { $0 != nil }, "records read again were taken for redeliveries")
        let newEpoch = try #require(again[0])
        #expect(newEpoch != oldEpoch)

        // The old assignment's results finish their records but store no offset.
        ledger.finish(message(1), epoch: oldEpoch)
        ledger.finish(message(2), epoch: oldEpoch)
        #expect(stored.withLock { $0 } == [1])
        #expect(ledger.load.messages == 2)

        ledger.finish(message(1), epoch: newEpoch)
        ledger.finish(message(2), epoch: newEpoch)
        #expect(stored.withLock { $0 } == [1, 2, 3])
        #expect(ledger.load.messages == 0 && ledger.load.bytes == 0)
    }

    @Test("a record already tracked in this assignment is a redelivery and is not admitted twice")
    func redeliveryIsDropped() {
        let ledger = InFlightLedger { _, _ in }
        ledger.assigned([partition])
        #expect(ledger.admit([message(5)][...]) .allSatisfy { $0 != nil })
        #expect(ledger.admit([message(5)][...]) == [nil])
        #expect(ledger.load.messages == 1)
    }
}
