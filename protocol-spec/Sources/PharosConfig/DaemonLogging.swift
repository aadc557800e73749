import Logging

/// Every daemon and CLI logs the same way: to stderr (journald collects it under systemd),
/// at the level of its settings file.
public enum DaemonLogging {
    /// Bootstraps swift-log once per process, then returns the daemon's root logger.
    /// `level` is a level name a `ConfigSchema` key has checked; anything else means info.
    public static func bootstrap(level: String, label: String) -> Logger {
        let threshold = Logger.Level(rawValue: level) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = threshold
            return handler
        }
        return Logger(label: label)
    }
}
