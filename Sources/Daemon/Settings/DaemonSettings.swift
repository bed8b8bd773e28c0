import Foundation
import Kafka
import Logging
import Model

/// Every setting of `postclassd run`, parsed and checked. Built by ``SettingsResolver`` from
/// flags, `POSTCLASSD_*` environment variables and a config file, in that order of precedence.
struct DaemonSettings: Sendable {
    /// nil: start the embedded broker in-process.
    var brokers: String?
    var inputTopics = ["posts"]
    var outputTopic = "labels"
    var dlqTopic = "posts.dlq"
    var groupID = "postclassd"
    var batchSize = 32
    var batchWait: Duration = .milliseconds(20)
    var workers = ProcessInfo.processInfo.activeProcessorCount
    /// OpenBLAS's threads per product. Workers already run batches side by side, and OpenBLAS
    /// serialises products that arrive from several threads while its own pool is busy, so by
    /// default workers x BLAS threads = cores.
    var blasThreads: Int?
    var effectiveBLASThreads: Int { blasThreads ?? max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, workers)) }
    /// Little's law: at 100k posts/s and ~0.5 s from read to delivered, 50k are in flight.
    var maxInflightMessages = 100_000
    var maxInflightBytes = 256 * 1024 * 1024
    var kafkaProperties: [String: String] = [:]
    var model = "models/default"
    /// The encoders' products, resolved and checked against this CPU (``PrecisionSetting``).
    var precision: Precision = PrecisionSetting.auto.resolved
    /// Whether `precision` came from `auto` (the start-up log then says why).
    var precisionIsAutomatic = true
    var drainTimeout: Duration = .seconds(30)
    /// How long records may wait in an assigned partition with nothing taken in or finished
    /// before input counts as stalled (`/readyz` 503). Well above a batch's time, so a slow model
    /// is not mistaken for a stall.
    var stallTimeout: Duration = .seconds(60)
    var logLevel: Logger.Level = .info
    var logFormat: LogFormat = .text
    var keepImage = false
    var dropWhen: [LabelMatch] = []
    var routes: [Route] = []
    var maxMessageBytes = 10 * 1024 * 1024
    var maxImageBytes = 8 * 1024 * 1024
    var metricsAddress = "127.0.0.1:9464"
    /// Accept Kafka properties that weaken delivery (``unsafeDeliveryProperties``).
    var allowUnsafeDelivery = false
    var delivery = DeliveryMode.atLeastOnce
    /// nil: ``defaultTransactionalID``.
    var transactionalID: String?
    /// How often the open transaction commits (exactly-once): the commit waits for the batches
    /// in flight, so shorter intervals cost throughput and longer ones add output latency.
    var transactionInterval: Duration = .milliseconds(100)

    /// How output relates to input offsets.
    enum DeliveryMode: String, Sendable, CaseIterable {
        /// An offset is committed after its output is delivered: a crash may repeat output.
        case atLeastOnce = "at-least-once"
        /// Output and the input offsets it finishes commit in one Kafka transaction.
        case exactlyOnce = "exactly-once"
    }

    /// The transactional id when none is set: stable across restarts of this instance (so a
    /// restart fences its predecessor at once and aborts its open transaction) and distinct per
    /// group and host. Two instances of one group on one host must each set their own.
    var defaultTransactionalID: String {
        "postclassd-\(groupID)-\(ProcessInfo.processInfo.hostName)"
    }

    var effectiveTransactionalID: String { transactionalID ?? defaultTransactionalID }

    /// Kafka properties in `kafkaProperties` under which a delivery report (which finishes a record
    /// and stores its offset) no longer proves the output is durably written, with why.
    var unsafeDeliveryProperties: [(property: String, why: String)] {
        var found: [(String, String)] = []
        for key in ["acks", "request.required.acks"] {
            if let value = kafkaProperties[key], !["all", "-1"].contains(value.lowercased()) {
                found.append(("\(key)=\(value)", "the broker confirms before every in-sync replica has the record, so a broker failure can lose output whose input offset is already committed"))
            }
        }
        if let value = kafkaProperties["enable.idempotence"], ["false", "0"].contains(value.lowercased()) {
            found.append(("enable.idempotence=\(value)", "the producer's own retries may duplicate or reorder output, and acks may be lowered"))
        }
        return found
    }

    enum LogFormat: String, Sendable, CaseIterable { case text, json }

    /// The limits applied to every input record.
    var inputLimits: InputLimits {
        InputLimits(maxMessageBytes: maxMessageBytes, maxImageBytes: maxImageBytes, keepImage: keepImage)
    }
}

/// The `precision` setting: the number format of the encoders' matrix products (`Precision`).
enum PrecisionSetting: String, Sendable, CaseIterable {
    /// bf16 where the CPU has AVX512-BF16 and runs it fast enough to pay (`Precision.automatic`),
    /// else fp32.
    case auto
    case fp32
    case bf16

    /// The precision this setting runs at on this CPU.
    var resolved: Precision {
        switch self {
        case .auto: return Precision.automatic
        case .fp32: return .fp32
        case .bf16: return .bf16
        }
    }

    /// Parses and checks a value: bf16 is refused on a CPU without AVX512-BF16, where only the
    /// portable bf16 body (many times slower than fp32, for tests) could run it.
    static func parse(_ text: String) throws(SettingsProblem) -> Precision {
        guard let setting = PrecisionSetting(rawValue: text.lowercased()) else {
            throw SettingsProblem("'\(text)' is not auto, fp32 or bf16")
        }
        if setting == .bf16, !Precision.cpuHasBF16 {
            throw SettingsProblem("bf16 needs a CPU with AVX512-BF16 and this one has none; use auto (fp32 here) or fp32")
        }
        return setting.resolved
    }
}

/// `task=label`, as `--drop-when` takes it.
struct LabelMatch: Sendable, Hashable, CustomStringConvertible {
    let task: String
    let label: String
    var description: String { "\(task)=\(label)" }
}

/// `task=label:topic`, as `--route` takes it.
struct Route: Sendable, Hashable {
    let match: LabelMatch
    let topic: String
}

/// One entry of the settings table: its name, what it means, and how to parse it into
/// ``DaemonSettings``. The table drives the flags' help, the environment variable names, the
/// config-file keys and the start-up checks, so they can never disagree.
struct SettingSpec: Sendable {
    let name: String
    let help: String
    let apply: @Sendable (inout DaemonSettings, SettingValue) throws(SettingsProblem) -> Void

    /// `POSTCLASSD_BATCH_SIZE` for `batch-size`.
    var environmentName: String { "POSTCLASSD_" + name.uppercased().replacingOccurrences(of: "-", with: "_") }
}

/// What is wrong with one value (the resolver adds which setting and where it came from).
struct SettingsProblem: Error {
    let text: String
    init(_ text: String) { self.text = text }
}
