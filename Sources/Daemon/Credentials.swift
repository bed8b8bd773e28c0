import Foundation
import Logging

/// Kafka secrets from systemd's `LoadCredential=` (files in `$CREDENTIALS_DIRECTORY`), so they
/// never appear in argv or the environment. An empty or absent file means "not set".
///
/// | file | librdkafka property |
/// |---|---|
/// | `kafka-sasl-password` | `sasl.password` (its contents) |
/// | `kafka-tls-key` | `ssl.key.location` (the file's path) |
/// | `kafka-tls-key-password` | `ssl.key.password` (its contents) |
/// | `kafka-oauth-client-secret` | `sasl.oauthbearer.client.secret` (its contents) |
enum Credentials {
    /// Credential files whose contents are a property's value.
    static let secretFiles = [("kafka-sasl-password", "sasl.password"),
                              ("kafka-tls-key-password", "ssl.key.password"),
                              ("kafka-oauth-client-secret", "sasl.oauthbearer.client.secret")]

    static func kafkaProperties(environment: [String: String] = ProcessInfo.processInfo.environment,
                                logger: Logger) -> [String: String] {
        guard let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty else { return [:] }
        var properties: [String: String] = [:]
        for (file, property) in secretFiles {
            let url = URL(fileURLWithPath: directory).appendingPathComponent(file)
            if let text = try? String(contentsOf: url, encoding: .utf8) {
                let secret = text.trimmingCharacters(in: .newlines)
                if !secret.isEmpty { properties[property] = secret }
            }
        }
        let key = URL(fileURLWithPath: directory).appendingPathComponent("kafka-tls-key")
        if let attributes = try? FileManager.default.attributesOfItem(atPath: key.path),
           (attributes[.size] as? NSNumber)?.intValue ?? 0 > 0 {
            properties["ssl.key.location"] = key.path
        }
        if !properties.isEmpty {
            logger.info("Kafka credentials loaded from $CREDENTIALS_DIRECTORY", metadata: ["properties": .string(properties.keys.sorted().joined(separator: ","))])
        }
        return properties
    }
}
