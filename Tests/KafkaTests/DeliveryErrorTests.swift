import Foundation
import Kafka
import Testing

/// Failures reach the caller; nothing is dropped silently.
@Suite(.serialized) struct DeliveryErrorTests {
    @Test("a broker's refusal reaches the caller as a delivery error", arguments: ClusterKind.available)
    func brokerRefusalIsReported(kind: ClusterKind) throws {
        let cluster = try TestCluster(kind)
        let topic = try cluster.makeTopic("refuse", partitions: 1)
        let deliveries = DeliveryLog()
        // The client allows 10 MB, so the broker is the one to refuse.
        let producer = try cluster.producer(configure: { $0.maxMessageBytes = 10_000_000 }, onDelivery: deliveries.record)
        defer { producer.close(timeout: .seconds(5)) }

        let value: [UInt8]
        switch kind {
        case .external:
            value = [UInt8](repeating: 7, count: 3 * 1024 * 1024)  // over a real broker's 1 MB default
        case .embedded:
            value = Array("small".utf8)  // the mock broker has no size limit: make it refuse outright
            cluster.failNextProduceRequests(1, with: KafkaErrorCode.messageTooLarge)
        }
        try producer.send(ProducerRecord(topic: topic, value: value), token: 1)
        #expect(deliveries.wait(for: 1, timeout: .seconds(30)))
        let report = try #require(deliveries.all[1])
        #expect(report.offset == nil)
        #expect(report.error?.kind == .messageTooLarge, "got \(String(describing: report.error))")
        #expect(report.error?.codeName == "MSG_SIZE_TOO_LARGE")

        // The producer is still usable afterwards.
        try producer.send(ProducerRecord(topic: topic, value: Array("after".utf8)), token: 2)
        #expect(deliveries.wait(for: 2, timeout: .seconds(30)))
        #expect(deliveries.all[2]?.error == nil, "\(String(describing: deliveries.all[2]?.error))")
    }

    @Test("a record over the client's own limit is refused at send time")
    func clientLimitIsRefusedAtSend() throws {
        let cluster = try TestCluster(.embedded)
        let producer = try cluster.producer(configure: { $0.maxMessageBytes = 1000 }, onDelivery: { _ in })
        defer { producer.close(timeout: .seconds(5)) }
        #expect {
            try producer.send(ProducerRecord(topic: "any", value: [UInt8](repeating: 0, count: 5000)), token: 1)
        } throws: { error in
            (error as? KafkaError)?.kind == .messageTooLarge
        }
    }

    @Test("a full local queue pushes back instead of growing")
    func fullQueuePushesBack() throws {
        // A broker that is not there: nothing is delivered, so the queue fills.
        var client = KafkaClientConfiguration(bootstrapServers: "127.0.0.1:1")
        client.statisticsInterval = .zero
        var config = KafkaProducerConfiguration(client: client)
        config.maxQueuedMessages = 10
        config.messageTimeout = .seconds(2)
        let failures = DeliveryLog()
        let producer = try KafkaProducer(configuration: config, logger: .init(label: "test"), onDelivery: failures.record)
        for i in 0..<10 { try producer.send(ProducerRecord(topic: "t", value: [1]), token: UInt64(i)) }
        #expect {
            try producer.send(ProducerRecord(topic: "t", value: [1]), token: 99, timeout: .milliseconds(200))
        } throws: { error in
            (error as? KafkaError)?.kind == .queueFull
        }
        // The ten queued records are reported as failed once their timeout passes: none is lost silently.
        #expect(failures.wait(for: 10, timeout: .seconds(10)))
        #expect(failures.all.values.allSatisfy { $0.error != nil })
        producer.close(timeout: .seconds(1))
    }
}
