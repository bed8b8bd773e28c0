import Kafka
import Model

/// Builds output and dead-letter records from an input record and its outcome.
enum OutputRecord {
    /// The labelled output: the input's kept members spliced in byte for byte, then `labels`,
    /// `model` and `source`.
    static func value(input raw: [UInt8], kept: [Range<Int>], prediction: Prediction,
                      model: ModelIdentity, source: ConsumedMessage) -> [UInt8] {
        value(input: raw, kept: kept, prediction: prediction, model: model) { json in
            json.raw("{\"topic\":")
            json.string(source.topic)
            json.raw(",\"partition\":")
            json.number(Int64(source.partition))
            json.raw(",\"offset\":")
            json.number(source.offset)
            json.raw(",\"timestamp\":")
            if let ts = source.timestampMs { json.number(ts) } else { json.raw("null") }
            json.raw("}")
        }
    }

    /// The labelled output with `writeSource` writing the value of its `source` member.
    static func value(input raw: [UInt8], kept: [Range<Int>], prediction: Prediction, model: ModelIdentity,
                      writeSource: (inout JSONWriter) -> Void) -> [UInt8] {
        var json = JSONWriter(capacity: raw.count + 256)
        json.raw("{")
        for range in kept {
            json.raw(raw[range])
            json.raw(",")
        }
        json.raw("\"labels\":{")
        for (i, label) in prediction.labels.enumerated() {
            if i > 0 { json.raw(",") }
            json.string(label.task)
            json.raw(":{\"label\":")
            json.string(label.label)
            json.raw(",\"probabilities\":{")
            for (j, p) in label.probabilities.enumerated() {
                if j > 0 { json.raw(",") }
                json.string(p.label)
                json.raw(":")
                json.number(p.probability)
            }
            json.raw("},\"head\":")
            json.string(label.head)
            if !label.evidence.isEmpty {
                json.raw(",\"evidence\":{")
                for (j, e) in label.evidence.enumerated() {
                    if j > 0 { json.raw(",") }
                    json.string(e.key)
                    json.raw(":")
                    json.string(e.value)
                }
                json.raw("}")
            }
            json.raw("}")
        }
        json.raw("},\"model\":{\"name\":")
        json.string(model.name)
        json.raw(",\"version\":")
        json.string(model.version)
        json.raw("},\"source\":")
        writeSource(&json)
        json.raw("}")
        return json.bytes
    }

    /// Headers of an output record: the input's own, then where it came from.
    static func headers(_ source: ConsumedMessage) -> [KafkaHeader] {
        source.headers + sourceHeaders(source)
    }

    /// A dead-letter record: the original bytes, key and headers, plus the error and the source.
    static func deadLetter(_ source: ConsumedMessage, reason: DeadLetterReason, topic: String) -> ProducerRecord {
        ProducerRecord(topic: topic, key: source.key, value: source.value,
                       headers: source.headers + [KafkaHeader(key: "error.code", string: reason.code),
                                                  KafkaHeader(key: "error.message", string: reason.message)]
                           + sourceHeaders(source))
    }

    private static func sourceHeaders(_ source: ConsumedMessage) -> [KafkaHeader] {
        [KafkaHeader(key: "source.topic", string: source.topic),
         KafkaHeader(key: "source.partition", string: String(source.partition)),
         KafkaHeader(key: "source.offset", string: String(source.offset))]
    }
}
