import Foundation
import Logging

enum CoxLogging {
    /// Quiet logger for one-shot CLI commands: warnings and worse.
    static var cli: Logger {
        var logger = Logger(label: "pharos.cox.cli")
        logger.logLevel = .warning
        return logger
    }
}
