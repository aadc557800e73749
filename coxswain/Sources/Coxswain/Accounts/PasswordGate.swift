import Foundation
import Synchronization

/// Every Argon2id password check of the controller goes through here: at most
/// `maxConcurrent` at once (each takes 64 MiB and a core for ~0.1 s), at most `maxWaiting`
/// queued behind them, the rest refused at once. Parallel guesses then cost the guesser
/// time, not the controller its memory. The work runs on its own thread, not on the
/// cooperative pool the rest of the controller needs.
public final class PasswordGate: Sendable {
    public struct Busy: Error, Equatable {}

    public static let shared = PasswordGate()

    /// What a login for an unknown account is checked against (admin and device logins
    /// alike), so it costs what a known one costs.
    public static let decoyHash = (try? PasswordHash.make(password: AccountSecrets.newToken())) ?? ""

    public let maxConcurrent: Int
    public let maxWaiting: Int
    private struct State {
        var running = 0
        var waiting: [CheckedContinuation<Void, Never>] = []
        var highWater = 0
        var checks = 0
    }
    private let state = Mutex(State())

    public init(maxConcurrent: Int = 2, maxWaiting: Int = 32) {
        self.maxConcurrent = maxConcurrent
        self.maxWaiting = maxWaiting
    }

    /// The most checks that ran at once so far (for tests and metrics).
    public var highWaterMark: Int { state.withLock { $0.highWater } }
    /// Argon2id checks run so far.
    public var checks: Int { state.withLock { $0.checks } }

    /// Whether `password` matches `phc`; `Busy` when the queue is full.
    public func verify(password: String, against phc: String) async throws(Busy) -> Bool {
        try await acquire()
        defer { release() }
        state.withLock { $0.checks += 1 }
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: PasswordHash.verify(password: password, against: phc)) }
        }
    }

    private func acquire() async throws(Busy) {
        enum Decision { case run, wait, refuse }
        let decision = state.withLock { state -> Decision in
            if state.running < maxConcurrent {
                state.running += 1
                state.highWater = max(state.highWater, state.running)
                return .run
            }
            return state.waiting.count < maxWaiting ? .wait : .refuse
        }
        switch decision {
        case .run: return
        case .refuse: throw Busy()
        case .wait:
            await withCheckedContinuation { continuation in
                let runNow = state.withLock { state -> Bool in
                    if state.running < maxConcurrent {
                        state.running += 1
                        state.highWater = max(state.highWater, state.running)
                        return true
                    }
                    state.waiting.append(continuation)
                    return false
                }
                if runNow { continuation.resume() }
            }
        }
    }

    /// Hands the slot to the next waiter, if any (it counts as running from here on).
    private func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiting.isEmpty else {
                state.running -= 1
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}
