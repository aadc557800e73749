import Foundation
import Logging

enum CoxLogging {
    /// stderr (journald collects it under systemd), at the configured level.
    static func bootstrap(level: String, label: String) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = Logger.Level(rawValue: level) ?? .info
            return handler
        }
        return Logger(label: label)
    }

    /// Quiet logger for one-shot CLI commands: warnings and worse.
    static var cli: Logger {
        var logger = Logger(label: "pharos.cox.cli")
        logger.logLevel = .warning
        return logger
    }
}
