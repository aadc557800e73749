import ServiceLifecycle

/// A long-running operation that stops when its task is cancelled (a reconcile loop, a
/// supervisor): cancelled at graceful shutdown. Returning or throwing on its own before
/// shutdown ends the group, as any service's does.
public struct TaskService: Service {
    let operation: @Sendable () async throws -> Void

    public init(_ operation: @escaping @Sendable () async throws -> Void) {
        self.operation = operation
    }

    public func run() async throws {
        let operation = operation
        try await cancelWhenGracefulShutdown {
            do { try await operation() } catch is CancellationError where Task.isCancelled {}
        }
    }
}

/// Runs `operation` until it returns or graceful shutdown cancels it; either way the service
/// returns normally (a service that throws during shutdown would fail the group).
func runUntilShutdown(_ operation: @escaping @Sendable () async -> Void) async {
    await cancelWhenGracefulShutdown {
        await operation()
        // Returned on its own (no watchdog, say): stay until shutdown.
        if !Task.isCancelled { try? await gracefulShutdown() }
    }
}
