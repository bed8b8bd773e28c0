import Kafka
import Model

/// Builds output and dead-letter records from an input record and its outcome.
enum OutputRecord {
    /// The labelled output: the input's kept members spliced in byte for byte, the members whose
    /// names the output reserves inside `input_fields`, then `labels`, `model` and `source`.
    static func value(input raw: [UInt8], kept: [Range<Int>], shadowed: [Range<Int>] = [], prediction: Prediction,
                      model: ModelIdentity, source: ConsumedMessage) -> [UInt8] {
        value(input: raw, kept: kept, shadowed: shadowed, prediction: prediction, model: model) { json in
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
    static func value(input raw: [UInt8], kept: [Range<Int>], shadowed: [Range<Int>] = [], prediction: Prediction,
                      model: ModelIdentity, writeSource: (inout JSONWriter) -> Void) -> [UInt8] {
        var json = JSONWriter(capacity: raw.count + 256)
        json.raw("{")
        for range in kept {
            json.raw(raw[range])
            json.raw(",")
        }
        if !shadowed.isEmpty {
            json.raw("\"input_fields\":{")
            for (i, range) in shadowed.enumerated() {
                if i > 0 { json.raw(",") }
                json.raw(raw[range])
            }
            json.raw("},")
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
        inputHeaders(source) + sourceHeaders(source)
    }

    /// The input's headers, with those named like the daemon's own (`source.*`, `error.*`) renamed
    /// to `input.source.*` / `input.error.*`, so a reader that takes the first (or the last)
    /// header of a name always gets the daemon's.
    static func inputHeaders(_ source: ConsumedMessage) -> [KafkaHeader] {
        guard source.headers.contains(where: { isReservedHeader($0.key) }) else { return source.headers }
        return source.headers.map { header in
            isReservedHeader(header.key) ? KafkaHeader(key: "input." + header.key, value: header.value) : header
        }
    }

    private static func isReservedHeader(_ key: String) -> Bool {
        key.hasPrefix("source.") || key.hasPrefix("error.")
    }

    /// Longest `error.message`, in bytes: reasons quote input (an id, a field name), and a
    /// dead-letter record must stay small whatever the input was.
    static let maxErrorMessageBytes = 1024

    /// A dead-letter record: the original bytes, key and headers, plus the error and the source.
    static func deadLetter(_ source: ConsumedMessage, reason: DeadLetterReason, topic: String) -> ProducerRecord {
        ProducerRecord(topic: topic, key: source.key, value: source.value,
                       headers: inputHeaders(source) + errorHeaders(reason) + sourceHeaders(source))
    }

    /// A dead-letter record the broker refused, made smaller for another try: first without the
    /// input's value, then also without its key and input headers (the coordinates and the reason
    /// are always kept, so the record can be found and read again). Which step comes next is read
    /// off the record itself, so re-sends after passing failures do not skip a step. Nil when
    /// nothing is left to take away.
    static func reducedDeadLetter(_ record: ProducerRecord, error: KafkaError) -> ProducerRecord? {
        var reduced = record
        if !record.headers.contains(where: { $0.key == "error.value-omitted" }) {
            let refused = error.codeName.isEmpty ? error.kind.rawValue : error.codeName
            reduced.value = nil
            reduced.headers.append(KafkaHeader(key: "error.value-omitted",
                                               string: "\(record.value?.count ?? 0) bytes refused by the broker (\(refused)); read them at the source offset"))
            return reduced
        }
        reduced.key = nil
        reduced.headers = record.headers.filter { isReservedHeader($0.key) }
        return reduced.key == record.key && reduced.headers.count == record.headers.count ? nil : reduced
    }

    private static func errorHeaders(_ reason: DeadLetterReason) -> [KafkaHeader] {
        [KafkaHeader(key: "error.code", string: reason.code),
         KafkaHeader(key: "error.message", string: truncated(reason.message, maxBytes: maxErrorMessageBytes))]
    }

    /// `text` cut to at most `maxBytes` of UTF-8 on a character boundary, marked when cut.
    static func truncated(_ text: String, maxBytes: Int) -> String {
        guard text.utf8.count > maxBytes else { return text }
        var end = text.utf8.index(text.utf8.startIndex, offsetBy: maxBytes - 32)
        while end > text.startIndex, text.utf8[end] & 0xC0 == 0x80 { end = text.utf8.index(before: end) }
        return String(text[..<end]) + "... (\(text.utf8.count) bytes in all)"
    }

    private static func sourceHeaders(_ source: ConsumedMessage) -> [KafkaHeader] {
        [KafkaHeader(key: "source.topic", string: source.topic),
         KafkaHeader(key: "source.partition", string: String(source.partition)),
         KafkaHeader(key: "source.offset", string: String(source.offset))]
    }
}
