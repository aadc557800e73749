import Foundation
import Synchronization

/// The one long-running child a supervisor owns (a WireGuard daemon, xray).
public final class ChildProcess: Sendable {
    private let slot = Mutex<Process?>(nil)

    public init() {}

    public var isRunning: Bool { slot.withLock { $0?.isRunning ?? false } }

    public func adopt(_ process: Process) { slot.withLock { $0 = process } }

    /// SIGTERM, then SIGKILL if it is still alive after `grace`.
    public func stop(grace: Duration = .seconds(5)) async {
        let running = slot.withLock { p -> Process? in
            defer { p = nil }
            return p
        }
        guard let running, running.isRunning else { return }
        running.terminate()
        let deadline = ContinuousClock.now + grace
        while running.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(100)) }
        if running.isRunning { kill(running.processIdentifier, SIGKILL) }
    }
}
