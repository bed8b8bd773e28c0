import Foundation

/// Resolves settings from their three sources: command-line flags win over `POSTCLASSD_*`
/// environment variables, which win over the config file. Each value is parsed and checked here,
/// at start-up, and a bad one is reported with its name and where it came from.
struct SettingsResolver {
    var flags: [String: SettingValue] = [:]
    var environment: [String: String] = ProcessInfo.processInfo.environment
    var configPath: String?
    /// The variables of `environment` that came from a systemd environment file (`check
    /// --env-file`), with that file's path, so an error can point into it.
    var environmentFileOf: [String: String] = [:]

    func resolve() throws(SettingsError) -> DaemonSettings {
        var layers: [(SettingSource, [String: SettingValue])] = []
        let path = configPath ?? environment["POSTCLASSD_CONFIG"]
        if let path {
            let file = try ConfigFile.load(path)
            for key in file.keys where SettingsTable.spec(named: key) == nil {
                throw SettingsError(setting: key, source: .file(path), problem: "unknown setting; known: \(SettingsTable.all.map(\.name).joined(separator: ", "))")
            }
            layers.append((.file(path), file))
        }
        var fromEnvironment: [String: SettingValue] = [:]
        for spec in SettingsTable.all {
            if let value = environment[spec.environmentName] { fromEnvironment[spec.name] = .scalar(value) }
        }
        layers.append((.environment("POSTCLASSD_*"), fromEnvironment))
        layers.append((.flag, flags))

        var settings = DaemonSettings()
        for spec in SettingsTable.all {
            // Kafka properties merge across sources (a flag overrides one key, not all of them);
            // every other setting takes the value of the highest-precedence source that has it.
            let applicable = spec.name == "kafka" ? layers : Array(layers.filter { $0.1[spec.name] != nil }.suffix(1))
            for (source, values) in applicable {
                guard let value = values[spec.name] else { continue }
                do {
                    try spec.apply(&settings, value)
                } catch {
                    let name = spec.environmentName
                    let origin: SettingSource = if case .environment = source {
                        environmentFileOf[name].map { SettingSource.environmentFile(name, $0) } ?? .environment(name)
                    } else { source }
                    throw SettingsError(setting: spec.name, source: origin, problem: error.text)
                }
            }
        }
        try check(settings, given: Set(layers.flatMap(\.1.keys)))
        return settings
    }

    /// Rules that involve more than one setting.
    private func check(_ s: DaemonSettings, given: Set<String>) throws(SettingsError) {
        if s.maxInflightMessages < s.batchSize {
            throw SettingsError(setting: "max-inflight-messages", source: nil,
                                problem: "\(s.maxInflightMessages) is below batch-size \(s.batchSize), so a full batch could never form; raise it")
        }
        if s.maxInflightBytes < s.maxMessageBytes {
            throw SettingsError(setting: "max-inflight-bytes", source: nil,
                                problem: "\(s.maxInflightBytes) is below max-message-bytes \(s.maxMessageBytes), so one large record could stall input; raise it")
        }
        let outputs = [s.outputTopic, s.dlqTopic] + s.routes.map(\.topic)
        for topic in outputs where s.inputTopics.contains(topic) {
            throw SettingsError(setting: "input-topics", source: nil, problem: "\(topic) is both an input and an output topic; records would loop")
        }
        if !s.allowUnsafeDelivery, let unsafe = s.unsafeDeliveryProperties.first {
            throw SettingsError(setting: "kafka", source: nil, problem:
                "\(unsafe.property) weakens delivery: \(unsafe.why). Remove it, or set allow-unsafe-delivery=true to accept that")
        }
        try checkDelivery(s, given: given)
        if s.outputTopic == s.dlqTopic {
            throw SettingsError(setting: "dlq-topic", source: nil, problem: "must differ from output-topic \(s.outputTopic)")
        }
    }

    /// Rules of exactly-once delivery: properties that would let input offsets be committed
    /// outside the transactions, or read input that was never committed.
    private func checkDelivery(_ s: DaemonSettings, given: Set<String>) throws(SettingsError) {
        guard s.delivery == .exactlyOnce else {
            for name in ["transactional-id", "transaction-interval"] where given.contains(name) {
                throw SettingsError(setting: name, source: nil, problem: "applies only with delivery exactly-once; set delivery=exactly-once or remove it")
            }
            return
        }
        if let value = s.kafkaProperties["enable.auto.commit"], !["false", "0"].contains(value.lowercased()) {
            throw SettingsError(setting: "kafka", source: nil, problem:
                "enable.auto.commit=\(value) would commit input offsets outside the transactions (exactly-once commits them with its output); remove it")
        }
        if let value = s.kafkaProperties["isolation.level"], value.lowercased() != "read_committed" {
            throw SettingsError(setting: "kafka", source: nil, problem:
                "isolation.level=\(value) would read input from aborted transactions; exactly-once needs read_committed (the default): remove it")
        }
        if let value = s.kafkaProperties["transaction.timeout.ms"] {
            guard let ms = Int(value), ms >= 1000, ms <= 900_000 else {
                throw SettingsError(setting: "kafka", source: nil, problem: "transaction.timeout.ms=\(value) is not a whole number of milliseconds from 1000 to 900000")
            }
            if Duration.milliseconds(ms) <= s.transactionInterval * 2 {
                throw SettingsError(setting: "transaction-interval", source: nil, problem:
                    "\(s.transactionInterval) leaves no room within transaction.timeout.ms=\(ms): the coordinator would abort transactions before they commit; keep the interval under half the timeout")
            }
        }
        if s.kafkaProperties["transactional.id"] != nil {
            throw SettingsError(setting: "kafka", source: nil, problem: "transactional.id is set by the transactional-id setting; use that instead")
        }
    }
}
