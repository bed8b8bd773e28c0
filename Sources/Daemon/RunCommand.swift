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

    @OptionGroup var settingsOptions: SettingsOptions

    func run() throws {
        let settings: DaemonSettings
        let address: MetricsAddress
        do {
            settings = try settingsOptions.resolve()
            address = try settings.parsedMetricsAddress()
        } catch {
            throw ValidationError(error.description)
        }
        DaemonLogging.bootstrap(level: settings.logLevel, format: settings.logFormat)
        let logger = Logger(label: "postclassd")
        let credentials = Credentials.read(directory: ProcessInfo.processInfo.environment["CREDENTIALS_DIRECTORY"])
        credentials.log(to: logger)
        let settingsWithSecrets = settings.adding(credentials)
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
        logger.info("inference kernels: \(KernelBodies.widest); encoder products: \(KernelBodies.describe(settings.precision))\(settings.precisionIsAutomatic ? ", auto: \(Precision.automaticReason)" : ""); OpenBLAS threads per product and JPEG decode threads per batch: \(settings.effectiveBLASThreads)")
        telemetry.modelLoading(expected: .seconds(300))
        let classifier = try ClassifierFactory.makeWarm(settings.model, precision: settings.precision,
                                                        decodeThreads: settings.effectiveBLASThreads)
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
            if settings.delivery == .exactlyOnce {
                logger.warning("delivery exactly-once on the embedded broker is not exactly-once: librdkafka 2.0.2's mock cluster shows aborted records to read_committed readers and keeps no offsets committed in transactions; use --brokers with a real cluster")
            }
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
