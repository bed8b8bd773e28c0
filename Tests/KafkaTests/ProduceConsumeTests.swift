import Foundation
import Kafka
import Testing

/// Round trips through a real broker over TCP.
@Suite(.serialized) struct ProduceConsumeTests {
    @Test("10,000 keyed messages with headers: each seen once, intact, in order per partition",
          arguments: ClusterKind.available)
    func tenThousandMessagesRoundTrip(kind: ClusterKind) throws {
        let cluster = try TestCluster(kind)
        let topic = try cluster.makeTopic("roundtrip", partitions: 3)
        let deliveries = DeliveryLog()
        let producer = try cluster.producer(onDelivery: deliveries.record)
        let total = 10_000
        for i in 0..<total {
            let record = ProducerRecord(
                topic: topic, key: Array("key-\(i % 97)".utf8), value: Array("value-\(i)".utf8),
                headers: [KafkaHeader(key: "seq", string: String(i)), KafkaHeader(key: "empty", value: []),
                          KafkaHeader(key: "null", value: nil)])
            try producer.send(record, token: UInt64(i))
        }
        try producer.flush(timeout: .seconds(30))
        #expect(deliveries.wait(for: total, timeout: .seconds(5)))
        let failed = deliveries.all.values.filter { $0.error != nil }
        #expect(failed.isEmpty, "deliveries failed: \(failed.prefix(3).map { String(describing: $0.error) })")
        producer.close(timeout: .seconds(5))

        let consumer = try cluster.consumer(group: "g-\(UUID())", topics: [topic])
        defer { consumer.close() }
        var collected = Collected()
        _ = pollUntil(timeout: .seconds(60)) {
            collected.absorb(consumer.poll(maxMessages: 1000, timeout: .milliseconds(100)))
            return collected.messages.count >= total
        }
        #expect(collected.messages.count == total)
        var seen = Set<Int>()
        var lastSeqByPartition: [Int32: Int] = [:]
        var partitionByKey: [[UInt8]: Int32] = [:]
        for message in collected.messages {
            let seqHeader = message.headers.first { $0.key == "seq" }?.value ?? []
            let seq = try #require(Int(String(decoding: seqHeader, as: UTF8.self)))
            #expect(seen.insert(seq).inserted, "message \(seq) seen twice")
            #expect(message.key == Array("key-\(seq % 97)".utf8))
            #expect(message.value == Array("value-\(seq)".utf8))
            #expect(message.headers.map(\.key) == ["seq", "empty", "null"])
            #expect(message.headers[1].value == [] && message.headers[2].value == nil)
            #expect((lastSeqByPartition[message.partition] ?? -1) < seq, "order broken in \(message.topicPartition)")
            lastSeqByPartition[message.partition] = seq
            // The same key always lands in the same partition.
            if let earlier = partitionByKey[message.key ?? []] { #expect(earlier == message.partition) }
            partitionByKey[message.key ?? []] = message.partition
            #expect(message.timestampMs != nil)
        }
        #expect(seen.count == total)
        #expect(Set(lastSeqByPartition.keys) == [0, 1, 2], "all three partitions carry data")
    }

    @Test("closing with fetched records never read drops them quietly (librdkafka would abort serving them as callbacks)",
          arguments: ClusterKind.available)
    func closeWithUnreadRecords(kind: ClusterKind) throws {
        let cluster = try TestCluster(kind)
        let topic = try cluster.makeTopic("unread", partitions: 1)
        let deliveries = DeliveryLog()
        let producer = try cluster.producer(onDelivery: deliveries.record)
        for i in 0..<2000 { try producer.send(ProducerRecord(topic: topic, key: nil, value: Array("v\(i)".utf8)), token: UInt64(i)) }
        try producer.flush(timeout: .seconds(30))
        producer.close(timeout: .seconds(5))
        for round in 0..<3 {
            let consumer = try cluster.consumer(group: "g-\(UUID())", topics: [topic])
            var read = 0
            _ = pollUntil(timeout: .seconds(30)) {
                read += consumer.poll(maxMessages: 1, timeout: .milliseconds(100)).messages.count
                return read > 0
            }
            #expect(read == 1, "round \(round)")
            Thread.sleep(forTimeInterval: 0.5)  // librdkafka prefetches the rest meanwhile
            consumer.close()
        }
    }

    @Test("pause stops delivery from a partition, resume restarts it where it stopped",
          arguments: ClusterKind.available)
    func pauseAndResume(kind: ClusterKind) throws {
        let cluster = try TestCluster(kind)
        let setup = try AssignedTopic(cluster, prefix: "pause", deliveries: DeliveryLog())
        let (topic, producer, consumer) = (setup.topic, setup.producer, setup.consumer)
        defer { producer.close(timeout: .seconds(5)) }
        defer { consumer.close() }
        var collected = setup.collected
        let partition = TopicPartition(topic: topic, partition: 0)
        try consumer.pause([partition])
        for i in 0..<50 { try producer.send(ProducerRecord(topic: topic, value: Array("m\(i)".utf8)), token: UInt64(i)) }
        try producer.flush(timeout: .seconds(10))
        _ = pollUntil(timeout: .seconds(2)) {
            collected.absorb(consumer.poll(maxMessages: 100, timeout: .milliseconds(100)))
            return false
        }
        #expect(collected.messages.isEmpty, "a paused partition delivered \(collected.messages.count) messages")

        try consumer.resume([partition])
        _ = pollUntil(timeout: .seconds(20)) {
            collected.absorb(consumer.poll(maxMessages: 100, timeout: .milliseconds(100)))
            return collected.messages.count >= 50
        }
        #expect(collected.messages.map(\.offset) == Array(0..<50))
    }

    /// librdkafka's batch call on its own waits for a full batch until the timeout; a poll must
    /// instead hand over what has arrived (or the first message to arrive) at once.
    @Test("a poll returns the messages that arrived without waiting for a full batch",
          arguments: ClusterKind.available)
    func pollDoesNotWaitForAFullBatch(kind: ClusterKind) throws {
        let cluster = try TestCluster(kind)
        let setup = try AssignedTopic(cluster, prefix: "partial", deliveries: DeliveryLog())
        let (topic, producer, consumer) = (setup.topic, setup.producer, setup.consumer)
        defer { producer.close(timeout: .seconds(5)) }
        defer { consumer.close() }
        var collected = setup.collected
        for i in 0..<5 { try producer.send(ProducerRecord(topic: topic, value: Array("m\(i)".utf8)), token: UInt64(i)) }
        try producer.flush(timeout: .seconds(10))
        let clock = ContinuousClock()
        let start = clock.now
        // Room for 1000 and a 10 s timeout: the old behaviour returned only when the timeout ran out.
        collected.absorb(consumer.poll(maxMessages: 1000, timeout: .seconds(10)))
        let elapsed = clock.now - start
        #expect(!collected.messages.isEmpty)
        #expect(elapsed < .seconds(5), "the poll took \(elapsed) for \(collected.messages.count) of 1000 messages")
    }

    @Test("statistics report per-partition consumer lag", arguments: ClusterKind.available)
    func statisticsReportLag(kind: ClusterKind) throws {
        let cluster = try TestCluster(kind)
        let topic = try cluster.makeTopic("lag", partitions: 1)
        let deliveries = DeliveryLog()
        let producer = try cluster.producer(onDelivery: deliveries.record)
        for i in 0..<200 { try producer.send(ProducerRecord(topic: topic, value: Array("m\(i)".utf8)), token: UInt64(i)) }
        try producer.flush(timeout: .seconds(10))
        producer.close(timeout: .seconds(5))

        let consumer = try cluster.consumer(group: "g-\(UUID())", topics: [topic])
        defer { consumer.close() }
        var collected = Collected()
        _ = pollUntil(timeout: .seconds(30)) {
            collected.absorb(consumer.poll(maxMessages: 50, timeout: .milliseconds(100)))
            return collected.messages.count == 200
        }
        #expect(collected.messages.count == 200)
        // Finish 150 of the 200: lag counts what is stored and committed, not what was fetched.
        let partition = TopicPartition(topic: topic, partition: 0)
        try consumer.storeOffset(partition, nextOffset: 150)
        try consumer.commit()
        var lag: PartitionLag?
        #expect(pollUntil(timeout: .seconds(30)) {
            collected.absorb(consumer.poll(maxMessages: 50, timeout: .milliseconds(100)))
            if case .statistics(let stats)? = collected.events.last {
                lag = stats.fetchingPartitions.first { $0.topicPartition == partition && $0.lag != nil }
            }
            return lag?.lag == 50
        })
        let found = try #require(lag)
        #expect(found.fetchState == "active")
        #expect(found.highWatermark == 200)
        #expect(found.storedLag == 50)
        #expect(found.committedOffset == 150)
        #expect(consumer.statistics != nil)
    }
}
