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
        /// In arrival order; resumed with true when handed a slot, false when cancelled.
        var waiting: [(id: UInt64, continuation: CheckedContinuation<Bool, Never>)] = []
        /// Waiters between taking a ticket and being queued, run or refused.
        var arriving: Set<UInt64> = []
        /// Of those, the ones cancelled before they were queued.
        var cancelledOnArrival: Set<UInt64> = []
        var nextID: UInt64 = 0
        var highWater = 0
        var checks = 0

        mutating func take() {
            running += 1
            highWater = max(highWater, running)
        }
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
    /// Checks queued behind the running ones.
    var waitingCount: Int { state.withLock { $0.waiting.count } }

    /// Whether `password` matches `phc`; `Busy` when the queue is full, or when the caller
    /// was cancelled (a client that hung up) while it waited: its place goes to the next one
    /// and no Argon2id runs for it.
    public func verify(password: String, against phc: String) async throws(Busy) -> Bool {
        try await acquire()
        defer { release() }
        if Task.isCancelled { throw Busy() }
        state.withLock { $0.checks += 1 }
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: PasswordHash.verify(password: password, against: phc)) }
        }
    }

    func acquire() async throws(Busy) {
        enum Decision { case run, wait(UInt64), refuse }
        let decision = state.withLock { state -> Decision in
            if state.running < maxConcurrent {
                state.take()
                return .run
            }
            guard state.waiting.count < maxWaiting else { return .refuse }
            state.nextID += 1
            state.arriving.insert(state.nextID)
            return .wait(state.nextID)
        }
        guard case .wait(let id) = decision else {
            if case .refuse = decision { throw Busy() }
            return
        }
        let admitted = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let now = state.withLock { state -> Bool? in
                    state.arriving.remove(id)
                    if state.cancelledOnArrival.remove(id) != nil { return false }
                    if state.running < maxConcurrent {
                        state.take()
                        return true
                    }
                    // Checked again: others may have queued since the decision.
                    guard state.waiting.count < maxWaiting else { return false }
                    state.waiting.append((id, continuation))
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
                if let index = state.waiting.firstIndex(where: { $0.id == id }) { return state.waiting.remove(at: index).continuation }
                if state.arriving.contains(id) { state.cancelledOnArrival.insert(id) }
                return nil
            }
            waiter?.resume(returning: false)
        }
        if !admitted { throw Busy() }
    }

    /// Hands the slot to the next waiter, if any (it counts as running from here on).
    func release() {
        let next = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            guard !state.waiting.isEmpty else {
                state.running -= 1
                return nil
            }
            return state.waiting.removeFirst().continuation
        }
        next?.resume(returning: true)
    }
}
