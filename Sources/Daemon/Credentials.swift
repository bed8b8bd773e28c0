import Foundation
import Logging

/// Kafka secrets from systemd's `LoadCredential=` (files in `$CREDENTIALS_DIRECTORY`), so they
/// never appear in argv or the environment. An empty or absent file means "not set".
///
/// | file | librdkafka property |
/// |---|---|
/// | `kafka-sasl-password` | `sasl.password` (its contents) |
/// | `kafka-tls-key` | `ssl.key.location` (the file's path) |
enum Credentials {
    static func kafkaProperties(environment: [String: String] = ProcessInfo.processInfo.environment,
                                logger: Logger) throws -> [String: String] {
        guard let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty else { return [:] }
        var properties: [String: String] = [:]
        let password = URL(fileURLWithPath: directory).appendingPathComponent("kafka-sasl-password")
        if let text = try? String(contentsOf: password, encoding: .utf8) {
            let secret = text.trimmingCharacters(in: .newlines)
            if !secret.isEmpty { properties["sasl.password"] = secret }
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

/// Runs async work from synchronous code and waits for it. Used only for the metrics server's
/// start and stop; the pipeline itself runs on its own threads, off Swift's cooperative pool.
func blockingAwait<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let done = DispatchSemaphore(value: 0)
    let box = ResultBox<T>()
    Task {
        do { box.set(.success(try await body())) } catch { box.set(.failure(error)) }
        done.signal()
    }
    done.wait()
    return try box.get()
}

private final class ResultBox<T: Sendable>: @unchecked Sendable {
    // @unchecked: written once before the semaphore is signalled, read after it.
    private var result: Result<T, any Error>?
    func set(_ value: Result<T, any Error>) { result = value }
    func get() throws -> T {
        guard let result else { throw CancellationError() }
        return try result.get()
    }
}
