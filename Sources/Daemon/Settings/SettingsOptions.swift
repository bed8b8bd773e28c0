import ArgumentParser
import Foundation
import PostclassMetrics

/// The daemon's settings as command-line flags: one per entry of ``SettingsTable``. `run` and
/// `check` both take them (`@OptionGroup`), so `check` validates exactly what `run` would use.
struct SettingsOptions: ParsableArguments {
    @Option(help: "A YAML or TOML config file (keys are the flag names).") var config: String?
    @Option(help: SettingsOptions.help("brokers")) var brokers: String?
    @Option(name: .customLong("input-topics"), help: SettingsOptions.help("input-topics")) var inputTopics: String?
    @Option(name: .customLong("output-topic"), help: SettingsOptions.help("output-topic")) var outputTopic: String?
    @Option(name: .customLong("dlq-topic"), help: SettingsOptions.help("dlq-topic")) var dlqTopic: String?
    @Option(name: .customLong("group-id"), help: SettingsOptions.help("group-id")) var groupID: String?
    @Option(name: .customLong("batch-size"), help: SettingsOptions.help("batch-size")) var batchSize: String?
    @Option(name: .customLong("batch-wait-ms"), help: SettingsOptions.help("batch-wait-ms")) var batchWaitMs: String?
    @Option(help: SettingsOptions.help("workers")) var workers: String?
    @Option(name: .customLong("blas-threads"), help: SettingsOptions.help("blas-threads")) var blasThreads: String?
    @Option(name: .customLong("max-inflight-messages"), help: SettingsOptions.help("max-inflight-messages")) var maxInflightMessages: String?
    @Option(name: .customLong("max-inflight-bytes"), help: SettingsOptions.help("max-inflight-bytes")) var maxInflightBytes: String?
    @Option(help: SettingsOptions.help("kafka")) var kafka: [String] = []
    @Option(help: SettingsOptions.help("model")) var model: String?
    @Option(help: SettingsOptions.help("precision")) var precision: String?
    @Option(name: .customLong("drain-timeout"), help: SettingsOptions.help("drain-timeout")) var drainTimeout: String?
    @Option(name: .customLong("stall-timeout"), help: SettingsOptions.help("stall-timeout")) var stallTimeout: String?
    @Option(name: .customLong("log-level"), help: SettingsOptions.help("log-level")) var logLevel: String?
    @Option(name: .customLong("log-format"), help: SettingsOptions.help("log-format")) var logFormat: String?
    @Flag(name: .customLong("keep-image"), help: SettingsOptions.help("keep-image")) var keepImage = false
    @Flag(name: .customLong("allow-unsafe-delivery"), help: SettingsOptions.help("allow-unsafe-delivery")) var allowUnsafeDelivery = false
    @Option(name: .customLong("drop-when"), help: SettingsOptions.help("drop-when")) var dropWhen: [String] = []
    @Option(help: SettingsOptions.help("route")) var route: [String] = []
    @Option(name: .customLong("max-message-bytes"), help: SettingsOptions.help("max-message-bytes")) var maxMessageBytes: String?
    @Option(name: .customLong("max-image-bytes"), help: SettingsOptions.help("max-image-bytes")) var maxImageBytes: String?
    @Option(name: .customLong("metrics-address"), help: SettingsOptions.help("metrics-address")) var metricsAddress: String?
    @Option(help: SettingsOptions.help("delivery")) var delivery: String?
    @Option(name: .customLong("transactional-id"), help: SettingsOptions.help("transactional-id")) var transactionalID: String?
    @Option(name: .customLong("transaction-interval"), help: SettingsOptions.help("transaction-interval")) var transactionInterval: String?

    /// A flag's help, from the settings table (one source for flags, environment and files).
    static func help(_ name: String) -> ArgumentHelp {
        ArgumentHelp(SettingsTable.spec(named: name)?.help ?? "")
    }

    /// The flags the user gave, by setting name.
    private var givenFlags: [String: SettingValue] {
        var flags: [String: SettingValue] = [:]
        let scalars: [(String, String?)] = [
            ("brokers", brokers), ("input-topics", inputTopics), ("output-topic", outputTopic), ("dlq-topic", dlqTopic),
            ("group-id", groupID), ("batch-size", batchSize), ("batch-wait-ms", batchWaitMs), ("workers", workers),
            ("blas-threads", blasThreads), ("max-inflight-messages", maxInflightMessages), ("max-inflight-bytes", maxInflightBytes),
            ("model", model), ("precision", precision), ("drain-timeout", drainTimeout), ("stall-timeout", stallTimeout), ("log-level", logLevel),
            ("log-format", logFormat), ("max-message-bytes", maxMessageBytes), ("max-image-bytes", maxImageBytes),
            ("metrics-address", metricsAddress), ("delivery", delivery), ("transactional-id", transactionalID),
            ("transaction-interval", transactionInterval),
        ]
        for (name, value) in scalars { if let value { flags[name] = .scalar(value) } }
        if keepImage { flags["keep-image"] = .scalar("true") }
        if allowUnsafeDelivery { flags["allow-unsafe-delivery"] = .scalar("true") }
        if !kafka.isEmpty { flags["kafka"] = .list(kafka) }
        if !dropWhen.isEmpty { flags["drop-when"] = .list(dropWhen) }
        if !route.isEmpty { flags["route"] = .list(route) }
        return flags
    }

    /// Resolves and checks every setting from the flags, `environment` and the config file, the
    /// metrics address included: what `run` refuses to start with, this throws. Variables in
    /// `environmentFileOf` came from that environment file (for error messages).
    func resolve(environment: [String: String] = ProcessInfo.processInfo.environment,
                 environmentFileOf: [String: String] = [:]) throws(SettingsError) -> DaemonSettings {
        let settings = try SettingsResolver(flags: givenFlags, environment: environment, configPath: config,
                                            environmentFileOf: environmentFileOf).resolve()
        _ = try settings.parsedMetricsAddress()
        return settings
    }
}

extension DaemonSettings {
    /// `metrics-address`, parsed.
    func parsedMetricsAddress() throws(SettingsError) -> MetricsAddress {
        do {
            return try MetricsAddress(parsing: metricsAddress)
        } catch {
            throw SettingsError(setting: "metrics-address", source: nil, problem: "\(error)")
        }
    }
}
