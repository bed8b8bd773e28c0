import Foundation
import Logging

/// Sets up swift-log once per process: lines on standard error, as text for people or as JSON
/// (one object per line) for log collectors.
enum DaemonLogging {
    static func bootstrap(level: Logger.Level, format: DaemonSettings.LogFormat = .text) {
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            case .json:
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}

/// Writes each log event as one JSON object per line on standard error.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        write(level: event.level, message: event.message, metadata: event.metadata)
    }

    private func write(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?) {
        var json = JSONWriter(capacity: 256)
        json.raw("{\"time\":")
        json.string(Date().ISO8601Format(.iso8601.time(includingFractionalSeconds: true).year().month().day().dateSeparator(.dash)))
        json.raw(",\"level\":")
        json.string(level.rawValue)
        json.raw(",\"logger\":")
        json.string(label)
        json.raw(",\"message\":")
        json.string(message.description)
        for (key, value) in metadata.merging(explicit ?? [:], uniquingKeysWith: { $1 }).sorted(by: { $0.key < $1.key }) {
            json.raw(",")
            json.string(key)
            json.raw(":")
            json.string(value.description)
        }
        json.raw("}\n")
        // One write(2) per line keeps lines from different threads whole.
        json.bytes.withUnsafeBufferPointer { buffer in
            _ = Foundation.write(STDERR_FILENO, buffer.baseAddress, buffer.count)
        }
    }
}
