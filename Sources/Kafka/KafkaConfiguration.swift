import CRdKafka
import Foundation

/// Settings shared by every client: where the cluster is, who we are, and any librdkafka property.
///
/// Typed fields cover what postclassd itself relies on; ``properties`` passes anything else through
/// to librdkafka unchanged (`security.protocol`, `sasl.*`, `ssl.*`, `compression.type`, ...).
/// Properties are applied after the typed fields, so a property overrides a typed default.
public struct KafkaClientConfiguration: Sendable {
    /// `bootstrap.servers`: a comma-separated list of `host:port`.
    public var bootstrapServers: String
    /// `client.id`, shown in broker logs and metrics.
    public var clientID: String = "postclassd"
    /// `statistics.interval.ms`; 0 turns statistics (and so consumer lag) off.
    public var statisticsInterval: Duration = .seconds(5)
    /// Any librdkafka property, applied last.
    public var properties: [String: String] = [:]

    public init(bootstrapServers: String) {
        self.bootstrapServers = bootstrapServers
    }

    /// Whether a property's value may be a secret (a password, a key, a token, a JAAS line): such
    /// values never appear in an error or a log line.
    public static func mayHoldSecret(_ key: String) -> Bool {
        let key = key.lowercased()
        return ["password", "secret", "jaas", "token", "credential", "oauthbearer.config", "key.pem", "private"]
            .contains { key.contains($0) }
    }

    /// Parses a `key=value` librdkafka property as given on the command line.
    public static func parseProperty(_ text: String) throws(KafkaError) -> (key: String, value: String) {
        guard let eq = text.firstIndex(of: "="), eq != text.startIndex else {
            // The text itself is not repeated: a mistyped `sasl.password:...` would put the
            // secret in the journal.
            throw KafkaError(kind: .configuration, message:
                "a Kafka property (\(text.count) characters) is not key=value; write it as key=value, for example --kafka compression.type=lz4")
        }
        let key = text[..<eq].trimmingCharacters(in: .whitespaces)
        let value = String(text[text.index(after: eq)...])
        return (key, value)
    }

    /// The properties this configuration sets, in the order they are applied.
    func orderedProperties() -> [(String, String)] {
        var list: [(String, String)] = [
            ("bootstrap.servers", bootstrapServers),
            ("client.id", clientID),
            ("statistics.interval.ms", String(statisticsInterval.milliseconds)),
        ]
        list += properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        return list
    }
}

/// A librdkafka `rd_kafka_conf_t` under construction. It is destroyed on every path unless
/// ``release()`` hands it to `rd_kafka_new`, which then owns it.
final class NativeConfiguration {
    private var pointer: OpaquePointer?

    init() throws(KafkaError) {
        guard let conf = rd_kafka_conf_new() else {
            throw KafkaError(kind: .fatal, message: "librdkafka could not allocate a configuration")
        }
        pointer = conf
    }

    deinit {
        if let pointer { rd_kafka_conf_destroy(pointer) }
    }

    /// The live pointer, for setting callbacks.
    var raw: OpaquePointer? { pointer }

    /// Sets one property, turning librdkafka's rejection into an error that quotes its reason.
    func set(_ key: String, _ value: String) throws(KafkaError) {
        guard let pointer else { return }
        var errstr = [CChar](repeating: 0, count: 512)
        let result = rd_kafka_conf_set(pointer, key, value, &errstr, errstr.count)
        guard result == RD_KAFKA_CONF_OK else {
            var reason = String(cBuffer: errstr)
            var shown = value
            if KafkaClientConfiguration.mayHoldSecret(key) {
                shown = "<not shown: \(value.count) characters>"
                if !value.isEmpty { reason = reason.replacingOccurrences(of: value, with: "<not shown>") }
            }
            throw KafkaError(kind: .configuration, message:
                "Kafka property \(key)=\(shown) was rejected by librdkafka: \(reason)")
        }
    }

    func set(_ properties: [(String, String)]) throws(KafkaError) {
        for (key, value) in properties { try set(key, value) }
    }

    /// Gives up ownership: call only once `rd_kafka_new` has succeeded with this configuration.
    func release() { pointer = nil }
}

/// Creates a librdkafka client handle from a configuration, which it takes over on success.
func makeClientHandle(_ type: rd_kafka_type_t, _ conf: NativeConfiguration) throws(KafkaError) -> OpaquePointer {
    var errstr = [CChar](repeating: 0, count: 512)
    guard let handle = rd_kafka_new(type, conf.raw, &errstr, errstr.count) else {
        throw KafkaError(kind: .configuration, message:
            "librdkafka could not create a client: \(String(cBuffer: errstr))")
    }
    conf.release()
    return handle
}

extension Duration {
    /// Whole milliseconds, rounded down, clamped to `Int32` for librdkafka's timeout arguments.
    var milliseconds: Int32 {
        let (seconds, attoseconds) = components
        let ms = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return Int32(clamping: ms)
    }
}
