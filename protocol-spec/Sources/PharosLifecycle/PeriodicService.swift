import ServiceLifecycle

/// A job repeated every `interval` until graceful shutdown (sweeps, refreshes, retention).
/// A run in progress is cancelled at shutdown; the job handles its own errors, so one failed
/// round never ends the daemon.
public struct PeriodicService: Service {
    public enum Start: Sendable {
        /// The first round runs at once.
        case immediately
        /// The first round runs one interval after start.
        case afterInterval
    }

    let interval: Duration
    let start: Start
    let job: @Sendable () async -> Void

    public init(every interval: Duration, start: Start = .afterInterval, job: @escaping @Sendable () async -> Void) {
        self.interval = interval
        self.start = start
        self.job = job
    }

    public func run() async throws {
        let (interval, start, job) = (interval, start, job)
        await runUntilShutdown {
            if start == .afterInterval { try? await Task.sleep(for: interval) }
            while !Task.isCancelled {
                await job()
                try? await Task.sleep(for: interval)
            }
        }
    }
}
