import ServiceLifecycle

/// Something the composition root already started (a bound listener, a supervised child),
/// held until graceful shutdown or cancellation and then closed. Starting it before the group
/// runs is deliberate: a port that cannot be bound fails the start with its own error, before
/// the daemon tells systemd it is ready.
public struct HeldService: Service {
    let close: @Sendable () async -> Void

    public init(close: @escaping @Sendable () async -> Void) {
        self.close = close
    }

    public func run() async throws {
        try? await gracefulShutdown()
        await close()
    }
}
