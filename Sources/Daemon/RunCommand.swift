import ArgumentParser
import Foundation
import Kafka
import Logging
import Model
import PostclassMetrics

/// `postclassd run`: the daemon.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Consume posts from Kafka, label them in micro-batches, produce labelled records.",
        discussion: """
            Every setting can also come from a POSTCLASSD_* environment variable (POSTCLASSD_BATCH_SIZE \
            for --batch-size) or a YAML/TOML config file (--config); flags win over the environment, \
            which wins over the file. Without --brokers the embedded broker runs in-process.
            """
    )

    @Option(help: "A YAML or TOML config file (keys are the flag names).") var config: String?
    @Option(help: RunCommand.help("brokers")) var brokers: String?
    @Option(name: .customLong("input-topics"), help: RunCommand.help("input-topics")) var inputTopics: String?
    @Option(name: .customLong("output-topic"), help: RunCommand.help("output-topic")) var outputTopic: String?
    @Option(name: .customLong("dlq-topic"), help: RunCommand.help("dlq-topic")) var dlqTopic: String?
    @Option(name: .customLong("group-id"), help: RunCommand.help("group-id")) var groupID: String?
    @Option(name: .customLong("batch-size"), help: RunCommand.help("batch-size")) var batchSize: String?
    @Option(name: .customLong("batch-wait-ms"), help: RunCommand.help("batch-wait-ms")) var batchWaitMs: String?
    @Option(help: RunCommand.help("workers")) var workers: String?
    @Option(name: .customLong("max-inflight-messages"), help: RunCommand.help("max-inflight-messages")) var maxInflightMessages: String?
    @Option(name: .customLong("max-inflight-bytes"), help: RunCommand.help("max-inflight-bytes")) var maxInflightBytes: String?
    @Option(help: RunCommand.help("kafka")) var kafka: [String] = []
    @Option(help: RunCommand.help("model")) var model: String?
    @Option(help: RunCommand.help("precision")) var precision: String?
    @Option(name: .customLong("drain-timeout"), help: RunCommand.help("drain-timeout")) var drainTimeout: String?
    @Option(name: .customLong("stall-timeout"), help: RunCommand.help("stall-timeout")) var stallTimeout: String?
    @Option(name: .customLong("log-level"), help: RunCommand.help("log-level")) var logLevel: String?
    @Option(name: .customLong("log-format"), help: RunCommand.help("log-format")) var logFormat: String?
    @Flag(name: .customLong("keep-image"), help: RunCommand.help("keep-image")) var keepImage = false
    @Flag(name: .customLong("allow-unsafe-delivery"), help: RunCommand.help("allow-unsafe-delivery")) var allowUnsafeDelivery = false
    @Option(name: .customLong("drop-when"), help: RunCommand.help("drop-when")) var dropWhen: [String] = []
    @Option(help: RunCommand.help("route")) var route: [String] = []
    @Option(name: .customLong("max-message-bytes"), help: RunCommand.help("max-message-bytes")) var maxMessageBytes: String?
    @Option(name: .customLong("max-image-bytes"), help: RunCommand.help("max-image-bytes")) var maxImageBytes: String?
    @Option(name: .customLong("metrics-address"), help: RunCommand.help("metrics-address")) var metricsAddress: String?

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
            ("max-inflight-messages", maxInflightMessages), ("max-inflight-bytes", maxInflightBytes), ("model", model),
            ("precision", precision),            ("drain-timeout", drainTimeout), ("stall-timeout", stallTimeout), ("log-level", logLevel), ("log-format", logFormat),
            ("max-message-bytes", maxMessageBytes), ("max-image-bytes", maxImageBytes), ("metrics-address", metricsAddress),
        ]
        for (name, value) in scalars { if let value { flags[name] = .scalar(value) } }
        if keepImage { flags["keep-image"] = .scalar("true") }
        if allowUnsafeDelivery { flags["allow-unsafe-delivery"] = .scalar("true") }
        if !kafka.isEmpty { flags["kafka"] = .list(kafka) }
        if !dropWhen.isEmpty { flags["drop-when"] = .list(dropWhen) }
        if !route.isEmpty { flags["route"] = .list(route) }
        return flags
    }

    func run() throws {
        let settings: DaemonSettings
        do {
            settings = try SettingsResolver(flags: givenFlags, configPath: config).resolve()
        } catch {
            throw ValidationError(error.description)
        }
        DaemonLogging.bootstrap(level: settings.logLevel, format: settings.logFormat)
        let logger = Logger(label: "postclassd")
        var settingsWithSecrets = settings
        settingsWithSecrets.kafkaProperties.merge(Credentials.kafkaProperties(logger: logger)) { _, secret in secret }

        let address: MetricsAddress
        do {
            address = try MetricsAddress(parsing: settings.metricsAddress)
        } catch {
            throw ValidationError("setting metrics-address: \(error)")
        }
        let telemetry = Telemetry(metrics: DaemonMetrics(stages: InferenceStage.allCases.map(\.rawValue)), health: HealthState(), notifier: SystemdNotifier(), logger: logger)
        let server: MetricsServer
        do {
            server = try blockingAwait { try await MetricsServer.start(address: address, metrics: telemetry.metrics, health: telemetry.health, logger: logger) }
        } catch {
            throw StartupError.metricsServer("\(error)")
        }
        defer { _ = try? blockingAwait { try await server.shutdown() } }
        logger.info("metrics, health and readiness at http://\(server.boundAddress)/metrics, /healthz, /readyz")

        BLASThreads.set(settings.effectiveBLASThreads)
        FreedMemory.keepForReuse()
        logger.info("inference kernels: \(KernelBodies.widest); text encoder products: \(KernelBodies.describe(settings.precision))\(settings.precisionIsAutomatic ? ", auto: \(Precision.automaticReason)" : ""); OpenBLAS threads per product: \(settings.effectiveBLASThreads)")
        telemetry.modelLoading(expected: .seconds(300))
        let classifier: any Classifier
        do {
            classifier = try ClassifierFactory.make(settings.model, precision: settings.precision)
        } catch {
            throw StartupError.model(error)
        }
        do {
            try classifier.warmUp()
        } catch {
            throw StartupError.warmUp(model: settings.model, "\(error)")
        }
        telemetry.modelLoaded(classifier.identity)

        var broker: EmbeddedBroker?
        let bootstrap: String
        if let brokers = settings.brokers {
            bootstrap = brokers
        } else {
            let topics = settings.inputTopics.map { TopicSpec(name: $0, partitions: 3) }
                + [TopicSpec(name: settings.outputTopic, partitions: 3), TopicSpec(name: settings.dlqTopic, partitions: 1)]
                + Set(settings.routes.map(\.topic)).sorted().map { TopicSpec(name: $0, partitions: 1) }
            let embedded: EmbeddedBroker
            do {
                embedded = try EmbeddedBroker(brokers: 1, topics: topics, logger: logger)
            } catch {
                throw StartupError.embeddedBroker(error)
            }
            broker = embedded
            bootstrap = embedded.bootstrapServers
            print("embedded broker at \(bootstrap)")
            fflush(nil)
            logger.notice("no --brokers given: running the embedded broker (demo and test use only)", metadata: ["bootstrap": .string(bootstrap)])
        }
        defer { broker?.close() }

        let pipeline = Pipeline(settings: settingsWithSecrets, classifier: classifier, bootstrap: bootstrap, telemetry: telemetry, logger: logger)
        let signals = ShutdownSignal.install { name, count in
            if count == 1 {
                logger.notice("\(name) received: draining (send it again to exit at once)")
                pipeline.requestStop()
            } else {
                logger.warning("\(name) received again: exiting without draining (uncommitted records will be read again)")
                // _exit, not exit: exit runs atexit handlers and C++ static destructors while
                // librdkafka's and the workers' threads still use what they tear down.
                _exit(130)
            }
        }
        defer { signals.cancel() }
        do {
            try pipeline.run()
        } catch {
            logger.critical("stopping: \(error.description)")
            throw ExitCode(2)
        }
        logger.info("stopped cleanly")
    }
}

/// Why `postclassd run` could not start although its settings were valid. Printed as
/// `Error: <description>` without the usage text (which is for mistakes on the command line),
/// exit status 1.
enum StartupError: Error, CustomStringConvertible {
    /// The metrics server could not bind its address; the text says which setting to change.
    case metricsServer(String)
    /// The model named by `--model` cannot be used.
    case model(SettingsError)
    /// The model loaded but failed its first inference.
    case warmUp(model: String, String)
    /// The embedded broker (no `--brokers`) could not start.
    case embeddedBroker(KafkaError)

    var description: String {
        switch self {
        case .metricsServer(let text): text
        case .model(let error): error.description
        case .warmUp(let model, let text): "the model \(model) loaded but failed its first classification: \(text); check the bundle against its manifest, or rebuild it with scripts/setup-models.sh"
        case .embeddedBroker(let error): "the embedded broker did not start: \(error); pass --brokers to use a real cluster"
        }
    }
}
