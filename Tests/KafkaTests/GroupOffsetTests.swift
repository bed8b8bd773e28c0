import Foundation
import Kafka
import Testing

/// Consumer groups and stored offsets: what at-least-once delivery stands on.
@Suite(.serialized) struct GroupOffsetTests {
    private func produce(_ count: Int, to topic: String, on cluster: TestCluster, startingAt start: Int = 0) throws {
        let deliveries = DeliveryLog()
        let producer = try cluster.producer(onDelivery: deliveries.record)
        defer { producer.close(timeout: .seconds(5)) }
        for i in start..<(start + count) {
            try producer.send(ProducerRecord(topic: topic, key: Array("k\(i)".utf8), value: Array("\(i)".utf8)), token: UInt64(i))
        }
        try producer.flush(timeout: .seconds(20))
        #expect(deliveries.all.values.allSatisfy { $0.error == nil })
    }

    @Test("a consumer that stored offsets up to K resumes at K after a restart", arguments: ClusterKind.available)
    func resumesAtStoredOffset(kind: ClusterKind) throws {
        let cluster = try TestCluster(kind)
        let topic = try cluster.makeTopic("resume", partitions: 1)
        try produce(100, to: topic, on: cluster)
        let group = "g-\(UUID())"
        let partition = TopicPartition(topic: topic, partition: 0)

        let first = try cluster.consumer(group: group, topics: [topic])
        var collected = Collected()
        _ = pollUntil(timeout: .seconds(30)) {
            collected.absorb(first.poll(maxMessages: 100, timeout: .milliseconds(100)))
            return collected.messages.count >= 100
        }
        #expect(collected.messages.count == 100)
        // Finished records 0...39 only: the next record to process is 40.
        try first.storeOffset(partition, nextOffset: 40)
        first.close()

        let second = try cluster.consumer(group: group, topics: [topic])
        defer { second.close() }
        var resumed = Collected()
        _ = pollUntil(timeout: .seconds(30)) {
            resumed.absorb(second.poll(maxMessages: 100, timeout: .milliseconds(100)))
            return !resumed.messages.isEmpty
        }
        #expect(resumed.messages.first?.offset == 40)
        let committed = try second.committedOffsets([partition], timeout: .seconds(10))
        #expect(committed[partition] == 40)
    }

    @Test("two members split a 3-partition topic; when one leaves, the other continues from its stored offsets",
          arguments: ClusterKind.available)
    func groupSplitsAndTakesOver(kind: ClusterKind) throws {
        let cluster = try TestCluster(kind)
        let topic = try cluster.makeTopic("group", partitions: 3)
        try produce(300, to: topic, on: cluster)
        let group = "g-\(UUID())"
        let a = try cluster.consumer(group: group, topics: [topic])
        let b = try cluster.consumer(group: group, topics: [topic])
        defer { b.close() }
        var fromA = Collected()
        var fromB = Collected()

        // Both members consume and store as they go, until the group is settled with both owning
        // partitions and every record has been read.
        let settled = pollUntil(timeout: .seconds(60)) {
            for (consumer, collected) in [(a, 0), (b, 1)] {
                let batch = consumer.poll(maxMessages: 100, timeout: .milliseconds(50))
                for message in batch.messages {
                    try? consumer.storeOffset(message.topicPartition, nextOffset: message.offset + 1)
                }
                if collected == 0 { fromA.absorb(batch) } else { fromB.absorb(batch) }
            }
            return !fromA.assigned.isEmpty && !fromB.assigned.isEmpty
                && fromA.assigned.union(fromB.assigned).count == 3
                && fromA.messages.count + fromB.messages.count >= 300
        }
        #expect(settled, "group did not settle: A owns \(fromA.assigned), B owns \(fromB.assigned)")
        #expect(fromA.assigned.isDisjoint(with: fromB.assigned))
        let ownedByA = fromA.assigned

        // A leaves: its offsets are committed on close; B must take its partitions over.
        a.close()
        try produce(300, to: topic, on: cluster, startingAt: 300)
        _ = pollUntil(timeout: .seconds(60)) {
            fromB.absorb(b.poll(maxMessages: 200, timeout: .milliseconds(100)))
            return fromB.assigned.count == 3 && Set(fromA.messages.map(\.value) + fromB.messages.map(\.value)).count >= 600
        }
        #expect(fromB.assigned.count == 3, "B did not take over: owns \(fromB.assigned)")

        // No gap: every offset of every partition was read by A or B.
        let all = fromA.messages + fromB.messages
        let values = Set(all.compactMap { Int(String(decoding: $0.value ?? [], as: UTF8.self)) })
        #expect(values == Set(0..<600), "missing: \(Set(0..<600).subtracting(values).sorted().prefix(10))")
        // B resumed A's partitions exactly where A stopped: no record of A's read again by B.
        for partition in ownedByA {
            let aLast = fromA.messages.filter { $0.topicPartition == partition }.map(\.offset).max() ?? -1
            let bFirst = fromB.messages.filter { $0.topicPartition == partition }.map(\.offset).min()
            #expect(bFirst == aLast + 1, "\(partition): A stopped at \(aLast), B started at \(String(describing: bFirst))")
        }
    }
}
