import Synchronization

/// A value set once that any number of tasks wait for: how one service tells the ones that
/// depend on it that it is up (the controller's socket listens, so its relays may open).
public final class OneShot<Value: Sendable>: Sendable {
    private struct State {
        var value: Value?
        var waiters: [Int: CheckedContinuation<Value?, Never>] = [:]
        var nextWaiter = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Sets the value and wakes every waiter; later calls are ignored.
    public func fulfill(_ value: Value) {
        let waiters = state.withLock { state -> [CheckedContinuation<Value?, Never>] in
            guard state.value == nil else { return [] }
            state.value = value
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: value) }
    }

    /// The value once set; nil if the waiting task is cancelled first.
    public var value: Value? {
        get async {
            let id = state.withLock { state in
                defer { state.nextWaiter += 1 }
                return state.nextWaiter
            }
            return await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let immediate: Value?? = state.withLock { state in
                        if let value = state.value { return .some(value) }
                        if Task.isCancelled { return .some(nil) }
                        state.waiters[id] = continuation
                        return nil
                    }
                    if let immediate { continuation.resume(returning: immediate) }
                }
            } onCancel: {
                let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
                waiter?.resume(returning: nil)
            }
        }
    }
}
