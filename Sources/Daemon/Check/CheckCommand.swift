import ArgumentParser
import Foundation
import Kafka
import Logging
import Model

/// `postclassd check`: before a first start, whether what `run` would use with the same settings
/// is usable: the settings, the credential files, the brokers, the topics, the group, the model.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check the settings, credentials, brokers, topics and model that run would use; exit 0 only if all pass.",
        discussion: """
            Takes the same settings as run (flags, POSTCLASSD_* variables, --config), and by default \
            also the service's environment file, \(EnvironmentFile.packaged), beneath the real \
            environment. Prints one line per check: OK <what>, or FAIL <what>: <reason>. <what to do>. \
            Nothing is written to Kafka unless --write-test is given.
            """
    )

    @OptionGroup var settingsOptions: SettingsOptions

    @Option(name: .customLong("env-file"), help: ArgumentHelp(
        "A systemd environment file of POSTCLASSD_* settings, beneath the real environment (default: \(EnvironmentFile.packaged) if it exists; '' for none).",
        valueName: "file"))
    var envFile: String?

    @Option(name: .customLong("credentials-directory"), help: ArgumentHelp(
        "The credential files to check and use (default: $CREDENTIALS_DIRECTORY, else \(Credentials.sourceDirectory) if it exists; '' for none).",
        valueName: "dir"))
    var credentialsDirectory: String?

    @Flag(name: .customLong("write-test"), help: "Also send one test record (key postclassd-check, header postclassd.check) to the output, dead-letter and routed topics.")
    var writeTest = false

    @Option(help: "How long each Kafka step may take (e.g. 10s, 500ms).")
    var timeout: String = "10s"

    func run() throws {
        let limit: Duration
        do {
            limit = try SettingsTable.duration(.scalar(timeout))
        } catch {
            throw ValidationError("--timeout: \(error.text)")
        }
        var report = CheckReport()
        guard let resolved = resolveSettings(&report) else { throw ExitCode(1) }
        let (settings, sources) = resolved
        // The findings are the output; logs only when asked for (librdkafka's connection errors
        // would repeat a FAIL line's reason several times over).
        DaemonLogging.bootstrap(level: settings.logLevel <= .debug ? settings.logLevel : .critical, format: settings.logFormat)
        let logger = Logger(label: "postclassd.check")
        report.ok("settings", sources)

        let credentials = checkCredentials(&report)
        if let brokers = settings.brokers {
            KafkaChecks(settings: settings.adding(credentials), bootstrap: brokers, timeout: limit, writeTest: writeTest,
                        logger: logger).run(&report)
        } else {
            report.fail("brokers", "not set, so run would start its embedded broker, which is for demos and tests only",
                        todo: "Set --brokers or POSTCLASSD_BROKERS (in \(EnvironmentFile.packaged) for the service)")
        }
        BLASThreads.set(settings.effectiveBLASThreads)
        checkModel(settings.model, precision: settings.precision, &report)
        if report.failures > 0 { throw ExitCode(1) }
    }

    /// The settings as `run` resolves them, with the environment file beneath the environment;
    /// and where they came from, for the OK line.
    private func resolveSettings(_ report: inout CheckReport) -> (DaemonSettings, String)? {
        var environment = ProcessInfo.processInfo.environment
        var sources = ["defaults"]
        if let config = settingsOptions.config ?? environment["POSTCLASSD_CONFIG"] { sources.append(config) }
        let path = envFile ?? (FileManager.default.fileExists(atPath: EnvironmentFile.packaged) ? EnvironmentFile.packaged : "")
        var fromFile: [String: String] = [:]
        do {
            if !path.isEmpty {
                let file = try EnvironmentFile.load(path)
                for name in file.keys where environment[name] == nil { fromFile[name] = path }
                environment = file.merging(environment) { _, real in real }
                sources.append(path)
            }
            let settings = try settingsOptions.resolve(environment: environment, environmentFileOf: fromFile)
            return (settings, "resolved from " + (sources + ["environment", "flags"]).joined(separator: ", "))
        } catch {
            report.fail("settings", error.description, todo: "Fix that setting where it came from; run would refuse to start with it")
            return nil
        }
    }

    /// Each credential file there is, readable as a file; the ones the unit lists, present.
    private func checkCredentials(_ report: inout CheckReport) -> CredentialSet {
        let fromSystemd = ProcessInfo.processInfo.environment["CREDENTIALS_DIRECTORY"].flatMap { $0.isEmpty ? nil : $0 }
        let directory = credentialsDirectory
            ?? fromSystemd
            ?? (FileManager.default.fileExists(atPath: Credentials.sourceDirectory) ? Credentials.sourceDirectory : "")
        let credentials = Credentials.read(directory: directory)
        guard let directory = credentials.directory else {
            report.ok("credentials", credentialsDirectory == nil
                ? "none (no $CREDENTIALS_DIRECTORY and no \(Credentials.sourceDirectory))" : "none (--credentials-directory '')")
            return credentials
        }
        // Under systemd the unit's list has already been enforced; elsewhere `directory` holds
        // the sources LoadCredential= copies, and a missing one stops the unit from starting.
        let sources = directory != fromSystemd
        var findings: [String] = []
        var failed = false
        for file in credentials.files {
            switch file.state {
            case .unreadable(let reason):
                failed = true
                report.fail("credential \(file.name)", "\(file.path) cannot be read as a file: \(reason)",
                            todo: "Replace it with a regular file readable by root (empty if \(file.property) is not used)")
            case .absent where sources && Credentials.listedByUnit.contains(file.name):
                failed = true
                report.fail("credential \(file.name)", "\(file.path) is missing, and the unit's LoadCredential= lists it, so systemd would not start the service",
                            todo: "Create it (install -m 0600 /dev/null \(file.path)), empty if \(file.property) is not used")
            case .absent: break
            case .empty: findings.append("\(file.name) empty (unused)")
            case .set: findings.append("\(file.name) sets \(file.property)")
            }
        }
        if !failed { report.ok("credentials in \(directory)", findings.isEmpty ? "none set" : findings.joined(separator: ", ")) }
        return credentials
    }

    /// Loads the model and classifies one test post, as `run` does before it reports ready.
    private func checkModel(_ model: String, precision: Precision, _ report: inout CheckReport) {
        let start = ContinuousClock.now
        do {
            let classifier = try ClassifierFactory.makeWarm(model, precision: precision)
            let seconds = (ContinuousClock.now - start) / .seconds(1)
            report.ok("model \(model)", "\(classifier.identity.name) \(classifier.identity.version), loaded and classified a test post in \(String(format: "%.1f", seconds)) s")
        } catch {
            report.fail("model \(model)", error.description, todo: "Point --model (POSTCLASSD_MODEL) at a working bundle, or repair this one")
        }
    }
}
