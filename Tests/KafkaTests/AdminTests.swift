import Foundation
import Kafka
import Testing

/// Topic creation against a real broker (the embedded one takes its topics from its own API).
@Suite(.serialized, .enabled(if: ClusterKind.available.contains(.external), "needs KAFKA_BOOTSTRAP (a real broker)"))
struct AdminTests {
    @Test("topic configs go with the create request, and the broker's refusal names the config")
    func topicConfigsReachTheBroker() throws {
        let cluster = try TestCluster(.external)
        let suffix = UUID().uuidString.prefix(8).lowercased()
        let good = TopicSpec(name: "configured-\(suffix)", partitions: 2,
                             configs: ["retention.bytes": "67108864", "segment.bytes": "8388608"])
        try KafkaAdmin.createTopics([good], client: cluster.clientConfiguration(), logger: cluster.logger)

        // The topic is there and takes records.
        let deliveries = DeliveryLog()
        let producer = try cluster.producer(onDelivery: deliveries.record)
        defer { producer.close(timeout: .seconds(5)) }
        try producer.send(ProducerRecord(topic: good.name, partition: 1, value: Array("kept".utf8)), token: 1)
        #expect(deliveries.wait(for: 1, timeout: .seconds(30)))
        #expect(deliveries.all[1]?.error == nil, "\(String(describing: deliveries.all[1]?.error))")

        // A value the broker cannot take is refused, not ignored, and the error says which.
        let bad = TopicSpec(name: "misconfigured-\(suffix)", partitions: 1, configs: ["retention.bytes": "banana"])
        let error = #expect(throws: KafkaError.self) {
            try KafkaAdmin.createTopics([bad], client: cluster.clientConfiguration(), logger: cluster.logger)
        }
        #expect(error?.description.contains("retention.bytes") == true, "\(String(describing: error))")
    }
}
