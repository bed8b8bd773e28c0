import Foundation
import Kafka
import Logging

/// The settings of `postclassd run`, in the order `--help` lists them.
enum SettingsTable {
    static let all: [SettingSpec] = [
        SettingSpec(name: "brokers", help: "Kafka bootstrap servers (host:port,...). Absent: run the embedded broker in-process.") { s, v throws(SettingsProblem) in
            s.brokers = try scalar(v)
        },
        SettingSpec(name: "input-topics", help: "Topics to read posts from, comma-separated.") { s, v throws(SettingsProblem) in
            s.inputTopics = try topicList(v)
        },
        SettingSpec(name: "output-topic", help: "Topic for labelled records.") { s, v throws(SettingsProblem) in
            s.outputTopic = try topic(v)
        },
        SettingSpec(name: "dlq-topic", help: "Dead-letter topic for records that cannot be labelled.") { s, v throws(SettingsProblem) in
            s.dlqTopic = try topic(v)
        },
        SettingSpec(name: "group-id", help: "Kafka consumer group; instances with the same group share the input partitions.") { s, v throws(SettingsProblem) in
            let id = try scalar(v)
            guard !id.isEmpty else { throw SettingsProblem("must not be empty") }
            s.groupID = id
        },
        SettingSpec(name: "batch-size", help: "Most posts per batch (1-4096).") { s, v throws(SettingsProblem) in
            s.batchSize = try integer(v, in: 1...4096)
        },
        SettingSpec(name: "batch-wait-ms", help: "Longest wait before a partial batch runs, in milliseconds (0-60000).") { s, v throws(SettingsProblem) in
            s.batchWait = .milliseconds(try integer(v, in: 0...60_000))
        },
        SettingSpec(name: "workers", help: "Worker threads running batches (default: the core count).") { s, v throws(SettingsProblem) in
            s.workers = try integer(v, in: 1...256)
        },
        SettingSpec(name: "blas-threads", help: "OpenBLAS threads per matrix product, and the threads a batch decodes its images on (default: cores / workers, at least 1).") { s, v throws(SettingsProblem) in
            s.blasThreads = try integer(v, in: 1...256)
        },
        SettingSpec(name: "max-inflight-messages", help: "Records read but not yet finished, at most; above it input partitions pause.") { s, v throws(SettingsProblem) in
            s.maxInflightMessages = try integer(v, in: 1...10_000_000)
        },
        SettingSpec(name: "max-inflight-bytes", help: "Bytes of records read but not yet finished, at most (suffixes KiB, MiB, GiB).") { s, v throws(SettingsProblem) in
            s.maxInflightBytes = try byteSize(v, in: 1024...(64 << 30))
        },
        SettingSpec(name: "kafka", help: "A librdkafka property key=value (repeatable), e.g. security.protocol=SASL_SSL.") { s, v throws(SettingsProblem) in
            for (key, value) in try properties(v) { s.kafkaProperties[key] = value }
        },
        SettingSpec(name: "model", help: "The model: a bundle folder (default models/default, built by scripts/setup-models.sh), or a test model: passthrough, rules, slow:MS.") { s, v throws(SettingsProblem) in
            s.model = try scalar(v)
        },
        SettingSpec(name: "precision", help: "The encoders' matrix products (the text encoder's, and EfficientNet's wider 1x1 convs): auto (bf16 where the CPU runs it fast: AMX-BF16 tiles, or AVX512-BF16 at 1.5x or more of fp32's multiply-add rate; else fp32), fp32, or bf16 (refused on a CPU without AVX512-BF16).") { s, v throws(SettingsProblem) in
            let text = try scalar(v)
            s.precision = try PrecisionSetting.parse(text)
            s.precisionIsAutomatic = text.lowercased() == PrecisionSetting.auto.rawValue
        },
        SettingSpec(name: "drain-timeout", help: "On SIGTERM, how long in-flight batches may take to finish (e.g. 30s, 500ms).") { s, v throws(SettingsProblem) in
            s.drainTimeout = try duration(v)
        },
        SettingSpec(name: "stall-timeout", help: "How long records may wait in an assigned partition while none is taken in or finished before /readyz reports input stalled (1s-1h, e.g. 60s).") { s, v throws(SettingsProblem) in
            let timeout = try duration(v)
            guard timeout >= .seconds(1) else { throw SettingsProblem("must be at least 1s: shorter would take an ordinary batch for a stall") }
            s.stallTimeout = timeout
        },
        SettingSpec(name: "log-level", help: "trace, debug, info, notice, warning, error or critical.") { s, v throws(SettingsProblem) in
            let text = try scalar(v)
            guard let level = Logger.Level(rawValue: text) else { throw SettingsProblem("'\(text)' is not a log level (trace, debug, info, notice, warning, error, critical)") }
            s.logLevel = level
        },
        SettingSpec(name: "log-format", help: "text or json.") { s, v throws(SettingsProblem) in
            let text = try scalar(v)
            guard let format = DaemonSettings.LogFormat(rawValue: text) else { throw SettingsProblem("'\(text)' is not text or json") }
            s.logFormat = format
        },
        SettingSpec(name: "keep-image", help: "Keep the base64 image in output records (true/false).") { s, v throws(SettingsProblem) in
            s.keepImage = try boolean(v)
        },
        SettingSpec(name: "drop-when", help: "task=label (repeatable): keep matching posts out of the output topic.") { s, v throws(SettingsProblem) in
            s.dropWhen = try list(v).map { item throws(SettingsProblem) in try labelMatch(item) }
        },
        SettingSpec(name: "route", help: "task=label:topic (repeatable): send matching posts to another topic.") { s, v throws(SettingsProblem) in
            s.routes = try list(v).map { item throws(SettingsProblem) in
                guard let colon = item.lastIndex(of: ":") else { throw SettingsProblem("'\(item)' is not task=label:topic") }
                let name = String(item[item.index(after: colon)...])
                guard TopicSpec.isValidName(name) else { throw SettingsProblem("'\(name)' in '\(item)' is not a valid topic name") }
                return Route(match: try labelMatch(String(item[..<colon])), topic: name)
            }
        },
        SettingSpec(name: "max-message-bytes", help: "Input records larger than this go to the dead-letter topic.") { s, v throws(SettingsProblem) in
            s.maxMessageBytes = try byteSize(v, in: 64...(256 << 20))
        },
        SettingSpec(name: "max-image-bytes", help: "Images larger than this (decoded from base64) go to the dead-letter topic.") { s, v throws(SettingsProblem) in
            s.maxImageBytes = try byteSize(v, in: 64...(256 << 20))
        },
        SettingSpec(name: "allow-unsafe-delivery", help: "Accept Kafka properties that weaken delivery (acks other than all, enable.idempotence=false); refused at start-up otherwise (true/false).") { s, v throws(SettingsProblem) in
            s.allowUnsafeDelivery = try boolean(v)
        },
        SettingSpec(name: "delivery", help: "at-least-once (default: a crash may repeat output) or exactly-once (Kafka transactions: output and input offsets commit together; readers must use isolation.level=read_committed).") { s, v throws(SettingsProblem) in
            let text = try scalar(v)
            guard let mode = DaemonSettings.DeliveryMode(rawValue: text) else { throw SettingsProblem("'\(text)' is not at-least-once or exactly-once") }
            s.delivery = mode
        },
        SettingSpec(name: "transactional-id", help: "With delivery exactly-once: this instance's Kafka transactional.id, the same across its restarts and different from every other instance's (default: postclassd-GROUP-HOSTNAME).") { s, v throws(SettingsProblem) in
            let id = try scalar(v)
            guard !id.isEmpty, id.utf8.count <= 249, !id.contains(where: { $0.isWhitespace || $0.isNewline }) else {
                throw SettingsProblem("'\(id)' is not a transactional id: 1 to 249 characters, no spaces")
            }
            s.transactionalID = id
        },
        SettingSpec(name: "transaction-interval", help: "With delivery exactly-once: how often the open transaction commits, in milliseconds (1-60000) or with a unit (100ms, 1s).") { s, v throws(SettingsProblem) in
            let text = try scalar(v)
            let interval: Duration = if let ms = Int(text) { .milliseconds(ms) } else { try duration(v) }
            guard interval >= .milliseconds(1), interval <= .seconds(60) else {
                throw SettingsProblem("'\(text)' is not from 1 ms to 60 s (a plain number is milliseconds)")
            }
            s.transactionInterval = interval
        },
        SettingSpec(name: "metrics-address", help: "Where /metrics, /healthz and /readyz listen (host:port; port 0 picks one).") { s, v throws(SettingsProblem) in
            s.metricsAddress = try scalar(v)
        },
    ]

    static func spec(named name: String) -> SettingSpec? { all.first { $0.name == name } }

    // MARK: - Parsers

    static func scalar(_ v: SettingValue) throws(SettingsProblem) -> String {
        switch v {
        case .scalar(let text): return text.trimmingCharacters(in: .whitespaces)
        case .list(let items) where items.count == 1: return items[0]
        default: throw SettingsProblem("expects one value")
        }
    }

    /// A list from a list value or a comma-separated string.
    static func list(_ v: SettingValue) throws(SettingsProblem) -> [String] {
        switch v {
        case .scalar(let text): return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        case .list(let items): return items.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty }
        case .table: throw SettingsProblem("expects a list, not a table")
        }
    }

    static func topic(_ v: SettingValue) throws(SettingsProblem) -> String {
        let name = try scalar(v)
        guard TopicSpec.isValidName(name) else { throw SettingsProblem("'\(name)' is not a valid topic name (letters, digits, '.', '_', '-'; at most 249)") }
        return name
    }

    static func topicList(_ v: SettingValue) throws(SettingsProblem) -> [String] {
        let names = try list(v)
        guard !names.isEmpty else { throw SettingsProblem("needs at least one topic") }
        for name in names where !TopicSpec.isValidName(name) {
            throw SettingsProblem("'\(name)' is not a valid topic name (letters, digits, '.', '_', '-'; at most 249)")
        }
        return names
    }

    static func integer(_ v: SettingValue, in range: ClosedRange<Int>) throws(SettingsProblem) -> Int {
        let text = try scalar(v)
        guard let n = Int(text), range.contains(n) else { throw SettingsProblem("'\(text)' is not a whole number from \(range.lowerBound) to \(range.upperBound)") }
        return n
    }

    static func boolean(_ v: SettingValue) throws(SettingsProblem) -> Bool {
        switch try scalar(v).lowercased() {
        case "true", "yes", "1", "on": return true
        case "false", "no", "0", "off": return false
        case let other: throw SettingsProblem("'\(other)' is not true or false")
        }
    }

    /// `1048576`, `512KiB`, `64MiB`, `1GiB` (KB/MB/GB are read as the binary units too).
    static func byteSize(_ v: SettingValue, in range: ClosedRange<Int>) throws(SettingsProblem) -> Int {
        let text = try scalar(v)
        let units: [(String, Int)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10), ("B", 1)]
        var number = text
        var multiplier = 1
        for (suffix, m) in units where text.hasSuffix(suffix) {
            number = String(text.dropLast(suffix.count)).trimmingCharacters(in: .whitespaces)
            multiplier = m
            break
        }
        guard let n = Int(number), case let (bytes, overflow) = n.multipliedReportingOverflow(by: multiplier), !overflow,
              range.contains(bytes) else {
            throw SettingsProblem("'\(text)' is not a size from \(range.lowerBound) to \(range.upperBound) bytes (e.g. 64MiB)")
        }
        return bytes
    }

    /// `30s`, `500ms`, `2m`, or plain seconds.
    static func duration(_ v: SettingValue) throws(SettingsProblem) -> Duration {
        let text = try scalar(v)
        let parsed: Duration?
        if text.hasSuffix("ms"), let n = Double(text.dropLast(2)) { parsed = .milliseconds(Int64(n)) }
        else if text.hasSuffix("s"), let n = Double(text.dropLast()) { parsed = .milliseconds(Int64(n * 1000)) }
        else if text.hasSuffix("m"), let n = Double(text.dropLast()) { parsed = .milliseconds(Int64(n * 60_000)) }
        else if let n = Double(text) { parsed = .milliseconds(Int64(n * 1000)) }
        else { parsed = nil }
        guard let parsed, parsed >= .zero, parsed <= .seconds(3600) else {
            throw SettingsProblem("'\(text)' is not a duration from 0 to 1h (e.g. 30s, 500ms, 2m)")
        }
        return parsed
    }

    static func labelMatch(_ text: String) throws(SettingsProblem) -> LabelMatch {
        let parts = text.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { throw SettingsProblem("'\(text)' is not task=label (e.g. correlation=irrelevant)") }
        return LabelMatch(task: parts[0], label: parts[1])
    }

    /// librdkafka properties from `key=value` items (a table in a config file, `;` or newline
    /// separated in the environment).
    static func properties(_ v: SettingValue) throws(SettingsProblem) -> [(String, String)] {
        let items: [String]
        switch v {
        case .table(let table): return table.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        case .list(let list): items = list
        case .scalar(let text): items = text.split(whereSeparator: { $0 == ";" || $0 == "\n" }).map(String.init)
        }
        return try items.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.map { item throws(SettingsProblem) in
            do {
                let p = try KafkaClientConfiguration.parseProperty(item.trimmingCharacters(in: .whitespaces))
                return (p.key, p.value)
            } catch {
                throw SettingsProblem((error as? KafkaError)?.message ?? "\(error)")
            }
        }
    }
}
