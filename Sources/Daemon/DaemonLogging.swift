import Foundation
import Logging

/// Sets up swift-log once per process: human-readable lines on standard error.
enum DaemonLogging {
    static func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
