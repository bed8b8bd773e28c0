import Foundation
import TestSupport
import Testing

/// `postclassd run` settings: flags over environment over config file, each checked at start-up
/// with a message that names it and where it came from.
@Suite struct SettingsTests {
    /// Runs `postclassd run` expecting it to refuse to start; returns what it printed.
    private func refusal(_ arguments: [String], environment: [String: String] = [:]) throws -> String {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("POSTCLASSD_") }
        for (k, v) in environment { env[k] = v }
        let process = Process()
        process.executableURL = try Binaries.postclassd
        process.arguments = ["run"] + arguments
        process.environment = env
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus != 0, "it started: \(text)")
        return text
    }

    private func configFile(_ name: String, _ text: String) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(UUID())-\(name)")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    @Test("a bad value names the setting and its source: flag, environment variable or config file")
    func errorsNameSettingAndSource() throws {
        #expect(try refusal(["--batch-size", "0"]).contains("setting batch-size (from command line): '0' is not a whole number from 1 to 4096"))
        #expect(try refusal([], environment: ["POSTCLASSD_BATCH_WAIT_MS": "soon"])
            .contains("setting batch-wait-ms (from environment variable POSTCLASSD_BATCH_WAIT_MS)"))
        let yaml = try configFile("c.yaml", "batch-size: 32\nmax-inflight-bytes: 12 parsecs\n")
        #expect(try refusal(["--config", yaml]).contains("setting max-inflight-bytes (from config file \(yaml))"))
        let toml = try configFile("c.toml", "unknown-thing = 3\n\n[kafka]\n\"acks\" = \"all\"\n")
        #expect(try refusal(["--config", toml]).contains("setting unknown-thing (from config file \(toml)): unknown setting"))
    }

    @Test("flags win over the environment, which wins over the config file")
    func precedence() throws {
        // The file's bad batch-size is overridden by the environment, so the error is about the
        // next bad setting, which the flag gives.
        let yaml = try configFile("p.yaml", "batch-size: 0\nworkers: 4\n")
        let envOverFile = try refusal(["--config", yaml, "--log-format", "xml"], environment: ["POSTCLASSD_BATCH_SIZE": "8"])
        #expect(!envOverFile.contains("batch-size"), "\(envOverFile)")
        #expect(envOverFile.contains("setting log-format (from command line): 'xml' is not text or json"))
        // The environment's bad workers is overridden by the flag.
        let flagOverEnv = try refusal(["--workers", "2", "--drain-timeout", "forever"], environment: ["POSTCLASSD_WORKERS": "0"])
        #expect(!flagOverEnv.contains("workers"), "\(flagOverEnv)")
        #expect(flagOverEnv.contains("setting drain-timeout (from command line)"))
    }

    @Test("precision is checked at start-up; classify says which precision and kernel body ran")
    func precision() throws {
        #expect(try refusal(["--precision", "fast"]).contains("setting precision (from command line): 'fast' is not auto, fp32 or bf16"))
        // Read independently of the code under test: Linux lists avx512_bf16 only where the CPU
        // has it and the kernel enables AVX-512.
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let cpuHasBF16 = flags.contains(" avx512_bf16")
        if !cpuHasBF16 {
            #expect(try refusal([], environment: ["POSTCLASSD_PRECISION": "bf16"])
                .contains("setting precision (from environment variable POSTCLASSD_PRECISION): bf16 needs a CPU with AVX512-BF16"))
        }
        let posts = FileManager.default.temporaryDirectory.appendingPathComponent("precision-\(UUID()).jsonl")
        try Data(#"{"id": "p1", "text": "Oh great, another Monday."}"#.utf8).write(to: posts)
        defer { try? FileManager.default.removeItem(at: posts) }
        let bundle = repositoryRoot.appendingPathComponent("Tests/ModelTests/Fixtures/tiny-bundle").path
        for precision in ["fp32", "bf16", "auto"] {
            let run = try runProgram(Binaries.postclassd.path, ["classify", posts.path, "--model", bundle, "--precision", precision])
            if precision == "bf16" && !cpuHasBF16 {
                #expect(run.status != 0 && run.output.contains("--precision: bf16 needs a CPU with AVX512-BF16"), "\(run.output)")
                continue
            }
            #expect(run.status == 0, "\(precision): \(run.output.suffix(1000))")
            switch precision {
            case "fp32": #expect(run.output.contains("encoders fp32 ("), "\(run.output.suffix(1000))")
            case "bf16": #expect(run.output.contains("encoders bf16 (amx-bf16 products, ") || run.output.contains("encoders bf16 (avx512-bf16 products, "),
                                 "\(run.output.suffix(1000))")
            default:
                // auto: bf16 only where the CPU has it and runs it fast enough; always with why.
                let fp32 = run.output.contains("encoders fp32 ("), bf16 = run.output.contains("encoders bf16 (")
                #expect(fp32 != bf16 && (fp32 || cpuHasBF16), "\(run.output.suffix(1000))")
                let why = cpuHasBF16 ? [", auto: AMX-BF16 tiles on this CPU", ", auto: AVX512-BF16 multiply-adds at "] : [", auto: no AVX512-BF16 on this CPU"]
                #expect(why.contains { run.output.contains($0) }, "\(run.output.suffix(1000))")
            }
            #expect(run.output.contains("1 labelled"), "\(precision): \(run.output.suffix(1000))")
        }
    }

    @Test("settings that conflict with each other are refused")
    func crossChecks() throws {
        #expect(try refusal(["--input-topics", "posts,labels"]).contains("labels is both an input and an output topic"))
        #expect(try refusal(["--batch-size", "64", "--max-inflight-messages", "10"]).contains("below batch-size 64"))
        #expect(try refusal(["--kafka", "no-equals-sign"]).contains("setting kafka"))
    }

    @Test("no error repeats a value that may be a secret: a mistyped property, an unknown one, a rejected one")
    func secretsAreNeverEchoed() throws {
        let secret = "hunter2-\(UUID().uuidString.prefix(6))"
        let common = ["--model", "passthrough", "--metrics-address", "127.0.0.1:0"]
        let mistyped = try refusal(common + ["--kafka", "sasl.password:\(secret)"])
        #expect(mistyped.contains("setting kafka") && mistyped.contains("is not key=value"), "\(mistyped)")
        let unknown = try refusal(common + ["--kafka", "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required password=\"\(secret)\";"])
        #expect(unknown.contains("sasl.jaas.config=<not shown"), "\(unknown)")
        // librdkafka's own reason for a bad value quotes the value: it is masked too.
        let badValue = try refusal(common + ["--kafka", "sasl.oauthbearer.token.endpoint.url.password=\(secret)"])
        #expect(badValue.contains("<not shown"), "\(badValue)")
        for output in [mistyped, unknown, badValue] {
            #expect(!output.contains(secret), "a secret was echoed:\n\(output)")
        }
    }

    @Test("Kafka properties that weaken delivery are refused unless allow-unsafe-delivery is set")
    func unsafeDeliveryIsRefused() throws {
        let common = ["--model", "passthrough", "--metrics-address", "127.0.0.1:0"]
        let acks = try refusal(common + ["--kafka", "acks=0"])
        #expect(acks.contains("setting kafka: acks=0 weakens delivery") && acks.contains("allow-unsafe-delivery"), "\(acks)")
        let idempotence = try refusal(common + ["--kafka", "enable.idempotence=false"], environment: ["POSTCLASSD_ALLOW_UNSAFE_DELIVERY": "false"])
        #expect(idempotence.contains("enable.idempotence=false weakens delivery"), "\(idempotence)")
        // With the flag the check lets it by: start-up then stops at the next check, which runs after it.
        let allowed = try refusal(common + ["--kafka", "acks=1", "--allow-unsafe-delivery", "--dlq-topic", "labels"])
        #expect(!allowed.contains("weakens delivery") && allowed.contains("must differ from output-topic"), "\(allowed)")
    }

    @Test("exactly-once settings are checked at start-up: the mode, the interval, the id, and properties that would commit or read outside the transactions")
    func exactlyOnceSettings() throws {
        let common = ["--model", "passthrough", "--metrics-address", "127.0.0.1:0"]
        #expect(try refusal(common + ["--delivery", "twice"]).contains("setting delivery (from command line): 'twice' is not at-least-once or exactly-once"))
        #expect(try refusal(common + ["--delivery", "exactly-once"], environment: ["POSTCLASSD_TRANSACTION_INTERVAL": "0"])
            .contains("setting transaction-interval (from environment variable POSTCLASSD_TRANSACTION_INTERVAL): '0' is not from 1 ms to 60 s"))
        #expect(try refusal(common + ["--delivery", "exactly-once", "--transactional-id", "has space"]).contains("is not a transactional id"))
        let withoutMode = try refusal(common + ["--transactional-id", "a"])
        #expect(withoutMode.contains("setting transactional-id: applies only with delivery exactly-once"), "\(withoutMode)")
        let autoCommit = try refusal(common + ["--delivery", "exactly-once", "--kafka", "enable.auto.commit=true"])
        #expect(autoCommit.contains("enable.auto.commit=true would commit input offsets outside the transactions"), "\(autoCommit)")
        let uncommitted = try refusal(common + ["--delivery", "exactly-once", "--kafka", "isolation.level=read_uncommitted"])
        #expect(uncommitted.contains("exactly-once needs read_committed"), "\(uncommitted)")
        let yaml = try configFile("eos.yaml", "delivery: exactly-once\ntransaction-interval: 30s\nkafka:\n  transaction.timeout.ms: \"50000\"\n")
        let tooLong = try refusal(common + ["--config", yaml])
        #expect(tooLong.contains("setting transaction-interval") && tooLong.contains("under half the timeout"), "\(tooLong)")
    }
}
