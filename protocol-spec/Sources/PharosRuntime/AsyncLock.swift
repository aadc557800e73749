import Synchronization

/// Mutual exclusion for async work, one lock per key: a second caller for the same key waits
/// until the first is done, in arrival order (each waiter is handed the lock directly);
/// different keys run at once. Not reentrant; waiting cannot be cancelled. The node
/// serializes its mutations with one key, the reconciler its pushes per node.
public final class KeyedAsyncLock<Key: Hashable & Sendable>: Sendable {
    private struct State {
        var held: Set<Key> = []
        var waiters: [Key: [CheckedContinuation<Void, Never>]] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    public func withLock<T, Failure: Error>(_ key: Key, isolation: isolated (any Actor)? = #isolation,
                                             _ body: () async throws(Failure) -> T) async throws(Failure) -> T {
        await acquire(key)
        defer { release(key) }
        return try await body()
    }

    /// Keys held right now (for tests and diagnostics).
    public var heldKeys: Set<Key> { state.withLock { $0.held } }

    private func acquire(_ key: Key) async {
        // The waiter is queued under the same lock that saw the key held, so a release in
        // between cannot be missed.
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let acquired = state.withLock { state -> Bool in
                if state.held.insert(key).inserted { return true }
                state.waiters[key, default: []].append(continuation)
                return false
            }
            if acquired { continuation.resume() }
        }
    }

    private func release(_ key: Key) {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard var queue = state.waiters[key], !queue.isEmpty else {
                state.held.remove(key)
                return nil
            }
            let next = queue.removeFirst()
            state.waiters[key] = queue.isEmpty ? nil : queue
            return next
        }
        next?.resume()
    }
}

/// A `KeyedAsyncLock` with a single key.
public final class AsyncLock: Sendable {
    private let lock = KeyedAsyncLock<Int>()

    public init() {}

    public func withLock<T, Failure: Error>(isolation: isolated (any Actor)? = #isolation,
                                             _ body: () async throws(Failure) -> T) async throws(Failure) -> T {
        try await lock.withLock(0, isolation: isolation, body)
    }

    public var isHeld: Bool { !lock.heldKeys.isEmpty }
}
