@testable import postclassd
import Kafka
import Testing

/// A dead-letter record the broker refuses is made smaller step by step, the step read off the
/// record itself, and the reason's text stays bounded whatever the input was.
@Suite struct DeadLetterReductionTests {
    private let tooLarge = KafkaError(kind: .messageTooLarge, code: 10, codeName: "MSG_SIZE_TOO_LARGE", message: "too large")

    private func deadLetter(reason: String = "bad") -> ProducerRecord {
        let source = ConsumedMessage(topicPartition: TopicPartition(topic: "posts", partition: 2), offset: 41, key: Array("k".utf8), value: [UInt8](repeating: 0x61, count: 5000),
                                     headers: [KafkaHeader(key: "trace", string: "t1"), KafkaHeader(key: "source.topic", string: "forged")], timestampMs: nil)
        return OutputRecord.deadLetter(source, reason: DeadLetterReason(code: "malformed_json", message: reason), topic: "posts.dlq")
    }

    private func header(_ key: String, _ record: ProducerRecord) -> String? {
        record.headers.first { $0.key == key }?.value.map { String(decoding: $0, as: UTF8.self) }
    }

    @Test("first without the value, then without key and input headers, then nothing left to take away")
    func stepsFollowTheRecord() throws {
        let original = deadLetter()
        let first = try #require(OutputRecord.reducedDeadLetter(original, error: tooLarge))
        #expect(first.value == nil && first.key == original.key && header("trace", first) == "t1")
        #expect(header("error.value-omitted", first)?.hasPrefix("5000 bytes refused by the broker (MSG_SIZE_TOO_LARGE)") == true)
        let second = try #require(OutputRecord.reducedDeadLetter(first, error: tooLarge))
        #expect(second.key == nil && header("trace", second) == nil && header("input.source.topic", second) == nil)
        #expect(header("error.code", second) == "malformed_json" && header("source.offset", second) == "41" && header("source.topic", second) == "posts")
        #expect(header("error.value-omitted", second) != nil)
        #expect(OutputRecord.reducedDeadLetter(second, error: tooLarge) == nil)
    }

    @Test("error.message is cut to 1 KiB on a character boundary and says how long it was")
    func errorMessageIsBounded() {
        let long = String(repeating: "é", count: 3000)  // 6000 bytes of two-byte characters
        let message = header("error.message", deadLetter(reason: long)) ?? ""
        #expect(message.utf8.count <= OutputRecord.maxErrorMessageBytes)
        #expect(message.hasSuffix("... (6000 bytes in all)"))
        #expect(message.hasPrefix("éé"))
        #expect(header("error.message", deadLetter(reason: "short")) == "short")
    }
}
