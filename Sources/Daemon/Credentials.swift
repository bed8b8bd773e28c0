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
    /// Every credential file, in the table's order, with its property and whether the property
    /// takes the file's contents (or its path).
    static let files: [(name: String, property: String, byContents: Bool)] = [
        ("kafka-sasl-password", "sasl.password", true),
        ("kafka-tls-key", "ssl.key.location", false),
        ("kafka-tls-key-password", "ssl.key.password", true),
        ("kafka-oauth-client-secret", "sasl.oauthbearer.client.secret", true),
    ]

    /// The files `systemd/postclassd.service` lists in `LoadCredential=`: systemd refuses to
    /// start the unit when one of their sources is missing.
    static let listedByUnit = ["kafka-sasl-password", "kafka-tls-key"]

    /// Where `LoadCredential=` in the unit reads its sources.
    static let sourceDirectory = "/etc/postclassd/credentials"

    /// Reads every credential file in `directory` (nil or empty: there are none).
    static func read(directory: String?) -> CredentialSet {
        guard let directory, !directory.isEmpty else { return CredentialSet(directory: nil, files: []) }
        let files = Self.files.map { file in
            let path = URL(fileURLWithPath: directory).appendingPathComponent(file.name).path
            return CredentialFile(name: file.name, property: file.property, path: path,
                                  state: state(of: path, byContents: file.byContents))
        }
        return CredentialSet(directory: directory, files: files)
    }

    private static func state(of path: String, byContents: Bool) -> CredentialFile.State {
        guard FileManager.default.fileExists(atPath: path) else { return .absent }
        let bytes: [UInt8]
        switch readFile(path) {
        case .failure(let failure): return .unreadable(failure.reason)
        case .success(let read): bytes = read
        }
        guard byContents else { return bytes.isEmpty ? .empty : .set(path) }
        guard let text = String(validating: bytes, as: UTF8.self) else { return .unreadable("it is not UTF-8 text") }
        let secret = text.trimmingCharacters(in: .newlines)
        return secret.isEmpty ? .empty : .set(secret)
    }

    /// A file's bytes, or why they cannot be read (the system's reason: a directory, no
    /// permission, ...). At most 1 MiB: no credential is larger.
    private static func readFile(_ path: String) -> Result<[UInt8], ReadFailure> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(ReadFailure(errno: errno)) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while bytes.count < 1 << 20 {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(ReadFailure(errno: errno))
            }
            if n == 0 { return .success(bytes) }
            bytes += chunk[..<n]
        }
        return .failure(ReadFailure(reason: "it is larger than 1 MiB, which no key or password is"))
    }

    /// Why a file could not be read: the system's words for an errno, or our own.
    private struct ReadFailure: Error {
        let reason: String
        init(reason: String) { self.reason = reason }
        init(errno code: Int32) { reason = String(cString: strerror(code)) }
    }
}

/// One credential file and what was found there.
struct CredentialFile: Sendable {
    enum State: Sendable, Equatable {
        /// No such file: the property is not set.
        case absent
        /// An empty file: not used (the unit needs the file to exist).
        case empty
        /// The property's value: the secret, or the file's path for `kafka-tls-key`.
        case set(String)
        /// The file is there but cannot be read as one; why.
        case unreadable(String)
    }

    let name: String
    let property: String
    let path: String
    let state: State
}

/// The credential files of one directory.
struct CredentialSet: Sendable {
    /// nil: no credentials directory.
    let directory: String?
    let files: [CredentialFile]

    /// The librdkafka properties the readable, non-empty files set.
    var kafkaProperties: [String: String] {
        var properties: [String: String] = [:]
        for file in files { if case .set(let value) = file.state { properties[file.property] = value } }
        return properties
    }

    /// Logs which properties were loaded, and an error for each file that is there but cannot be
    /// read (it is ignored, so the client runs without that secret).
    func log(to logger: Logger) {
        for file in files {
            if case .unreadable(let reason) = file.state {
                logger.error("credential \(file.name) is ignored: \(file.path) cannot be read: \(reason); replace it with a readable file (`postclassd check` checks them all)")
            }
        }
        let loaded = kafkaProperties.keys.sorted()
        if !loaded.isEmpty {
            logger.info("Kafka credentials loaded from $CREDENTIALS_DIRECTORY", metadata: ["properties": .string(loaded.joined(separator: ","))])
        }
    }
}

extension DaemonSettings {
    /// These settings with the credentials' Kafka properties merged in (a credential wins over
    /// the same property given as a setting).
    func adding(_ credentials: CredentialSet) -> DaemonSettings {
        var settings = self
        settings.kafkaProperties.merge(credentials.kafkaProperties) { _, secret in secret }
        return settings
    }
}
