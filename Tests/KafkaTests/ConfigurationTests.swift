import Foundation
import Kafka
import Logging
import Testing

@Suite struct ConfigurationTests {
    @Test func topicListParses() throws {
        let specs = try TopicSpec.parseList("posts:3,labels:3,posts.dlq:1,plain")
        #expect(specs == [TopicSpec(name: "posts", partitions: 3), TopicSpec(name: "labels", partitions: 3),
                          TopicSpec(name: "posts.dlq", partitions: 1), TopicSpec(name: "plain", partitions: 1)])
    }

    @Test(arguments: ["", "posts:0", "posts:x", "bad name:2", "a:1:2", "posts:99999"])
    func badTopicListsAreRejected(text: String) {
        #expect(throws: KafkaError.self) { try TopicSpec.parseList(text) }
    }

    @Test func propertiesParse() throws {
        let p = try KafkaClientConfiguration.parseProperty("sasl.password=a=b")
        #expect(p.key == "sasl.password" && p.value == "a=b")
        #expect(throws: KafkaError.self) { try KafkaClientConfiguration.parseProperty("novalue") }
        #expect(throws: KafkaError.self) { try KafkaClientConfiguration.parseProperty("=x") }
    }

    @Test("a property librdkafka rejects fails at start-up with librdkafka's reason")
    func rejectedPropertyQuotesLibrdkafka() {
        var client = KafkaClientConfiguration(bootstrapServers: "127.0.0.1:1")
        client.properties["no.such.property"] = "1"
        let config = KafkaConsumerConfiguration(client: client, groupID: "g")
        #expect {
            _ = try KafkaConsumer(configuration: config, logger: Logger(label: "test"))
        } throws: { error in
            guard let error = error as? KafkaError else { return false }
            return error.kind == .configuration && error.message.contains("no.such.property")
                && error.message.contains("No such configuration property")
        }

        var bad = KafkaClientConfiguration(bootstrapServers: "127.0.0.1:1")
        bad.properties["acks"] = "sometimes"
        #expect {
            _ = try KafkaProducer(configuration: KafkaProducerConfiguration(client: bad), logger: Logger(label: "test"), onDelivery: { _ in })
        } throws: { error in
            (error as? KafkaError)?.message.contains("acks=sometimes") == true
        }
    }

    @Test("the embedded broker starts, serves and stops within a few seconds")
    func embeddedBrokerLifecycle() throws {
        let start = ContinuousClock.now
        let broker = try EmbeddedBroker(brokers: 3, topics: [TopicSpec(name: "t", partitions: 6)], logger: Logger(label: "test"))
        #expect(broker.bootstrapServers.split(separator: ",").count == 3)
        #expect(broker.bootstrapServers.hasPrefix("127.0.0.1:"))
        let deliveries = DeliveryLog()
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(client: KafkaClientConfiguration(bootstrapServers: broker.bootstrapServers)),
            logger: Logger(label: "test"), onDelivery: deliveries.record)
        try producer.send(ProducerRecord(topic: "t", value: [1, 2, 3]), token: 1)
        try producer.flush(timeout: .seconds(5))
        #expect(deliveries.all[1]?.offset == 0)
        producer.close(timeout: .seconds(1))
        broker.close()
        broker.close()  // idempotent
        let elapsed = ContinuousClock.now - start
        // A hang guard, not a speed test: start-up to shut-down takes well under a second here.
        #expect(elapsed < .seconds(10), "took \(elapsed)")
    }

    @Test func statisticsParse() throws {
        let json = #"{"topics":{"t":{"partitions":{"0":{"fetch_state":"active","consumer_lag":5,"consumer_lag_stored":7,"hi_offset":10,"committed_offset":3,"stored_offset":3},"-1":{"fetch_state":"none","consumer_lag":-1}}}}}"#
        let stats = try #require(json.utf8CString.withUnsafeBytes { ConsumerStatistics.parse(UnsafeRawBufferPointer(rebasing: $0.dropLast())) })
        #expect(stats.partitions.count == 1)
        #expect(stats.partitions[0].lag == 5 && stats.partitions[0].storedLag == 7 && stats.partitions[0].highWatermark == 10)
        #expect(stats.fetchingPartitions.count == 1)
        #expect(json.utf8CString.withUnsafeBytes { ConsumerStatistics.parse(UnsafeRawBufferPointer(rebasing: $0.prefix(5))) } == nil)
    }
}

@Suite struct OffsetResetNoticeTests {
    @Test("librdkafka's offset-reset warning becomes an event naming the partition")
    func resetWarningIsParsed() {
        let callbacks = ClientCallbacksProbe.parse(
            facility: "OFFSET", "[thrd:main]: my.posts-1 [3]: offset reset (at offset 42, broker 1) to BEGINNING: fetch failed due to requested offset not available on the broker: Broker: Offset out of range")
        #expect(callbacks == TopicPartition(topic: "my.posts-1", partition: 3))
        #expect(ClientCallbacksProbe.parse(facility: "OFFSET", "[thrd:main]: posts [0]: something else") == nil)
        #expect(ClientCallbacksProbe.parse(facility: "FETCH", "[thrd:main]: posts [0]: offset reset (at offset 1)") == nil)
    }
}
