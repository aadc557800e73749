import Foundation
import Synchronization

/// The one long-running child a supervisor owns (a WireGuard daemon, xray): started with
/// argv only and a clean signal state (`Spawn`), in its own process group; stopped with
/// SIGTERM to the group, then SIGKILL after a grace period; its exit reported once, saying
/// whether we asked for it. The node's data plane and xray and caravel's tunnel and xray all
/// run their daemons through it. It never restarts a child: the daemon's own supervisor
/// (systemd, `Restart=on-failure`) does, once the owner reports the loss.
public final class ChildProcess: Sendable {
    public struct Exit: Sendable, Equatable {
        /// The exit code, or 128 + the signal that ended it.
        public var status: Int32
        /// True when `stop` asked for it; false when the child died on its own.
        public var requested: Bool

        public init(status: Int32, requested: Bool) {
            self.status = status
            self.requested = requested
        }
    }

    /// One run of a child: its pid, whether its end was asked for, and its status once a
    /// reaper thread (blocked in waitpid, off the concurrency pool) has collected it.
    private final class Run: Sendable {
        let pid: pid_t
        let stopRequested = Atomic<Bool>(false)
        let status = Mutex<Int32?>(nil)
        init(pid: pid_t) { self.pid = pid }
        var hasExited: Bool { status.withLock { $0 != nil } }
    }

    private let current = Mutex<Run?>(nil)

    public init() {}

    public var isRunning: Bool { current.withLock { $0.map { !$0.hasExited } ?? false } }

    /// The running child's pid, or nil.
    public var pid: Int32? { current.withLock { run in run.flatMap { $0.hasExited ? nil : $0.pid } } }

    /// Starts `executable arguments`; call `stop` first when one may run. `environment` nil
    /// inherits ours; `output` takes stdout and stderr (nil: ours).
    public func start(_ executable: String, arguments: [String], environment: [String: String]? = nil,
                      output: FileHandle? = nil, onExit: @escaping @Sendable (Exit) -> Void = { _ in }) throws(SpawnFailure) {
        let spawned = Spawn.start(executable, argv: [executable] + arguments, environment: environment, stdin: nil,
                                  output: output?.fileDescriptor, newProcessGroup: true)
        let run: Run
        switch spawned {
        case .success(let pid): run = Run(pid: pid)
        case .failure(let failure): throw failure
        }
        current.withLock { $0 = run }
        let reaper = Thread {
            var status: Int32 = 0
            while waitpid(run.pid, &status, 0) < 0, errno == EINTR {}
            let code = Spawn.exitCode(status)
            run.status.withLock { $0 = code }
            onExit(Exit(status: code, requested: run.stopRequested.load(ordering: .acquiring)))
        }
        reaper.name = "reaper \(run.pid)"
        reaper.start()
    }

    /// True once `ready` holds; false when the child exits first or `timeout` passes.
    public func waitUntilReady(timeout: Duration = .seconds(5), poll: Duration = .milliseconds(20),
                               _ ready: @Sendable () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if ready() { return true }
            guard isRunning else { return false }
            try? await Task.sleep(for: poll)
        }
        return ready()
    }

    /// Returns when the child has exited (at once when none runs) or the task is cancelled.
    public func waitForExit(poll: Duration = .milliseconds(200)) async {
        while !Task.isCancelled, isRunning { try? await Task.sleep(for: poll) }
    }

    /// SIGTERM to the child's group, then SIGKILL if it is still alive after `grace`;
    /// returns once it has exited.
    public func stop(grace: Duration = .seconds(5)) async {
        guard let run = current.withLock({ slot -> Run? in defer { slot = nil }; return slot }) else { return }
        run.stopRequested.store(true, ordering: .releasing)
        guard !run.hasExited else { return }
        kill(-run.pid, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while !run.hasExited, ContinuousClock.now < deadline { await Self.pause() }
        guard !run.hasExited else { return }
        kill(-run.pid, SIGKILL)
        // SIGKILL cannot be refused; the bound only guards against a reaper that never reports.
        let killed = ContinuousClock.now + .seconds(5)
        while !run.hasExited, ContinuousClock.now < killed { await Self.pause() }
    }

    /// 10 ms that a cancelled task waits too: stop runs during shutdown, when the calling
    /// task is often cancelled, and `Task.sleep` would then return at once and spin.
    private static func pause() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(10)) { done.resume() }
        }
    }
}
