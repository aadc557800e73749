import PharosRuntime
import ServiceLifecycle

/// Feeds systemd's watchdog (`WATCHDOG=1` at half of `WatchdogSec=`) while `healthy` says so,
/// until graceful shutdown. Without a watchdog it just waits: a service that returned early
/// would end the whole group.
public struct WatchdogService: Service {
    let healthy: @Sendable () async -> Bool

    public init(healthy: @escaping @Sendable () async -> Bool = { true }) {
        self.healthy = healthy
    }

    public func run() async throws {
        await runUntilShutdown { await SystemdNotify.feedWatchdog(healthy: healthy) }
    }
}
