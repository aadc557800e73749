import Foundation
import Logging
import Synchronization

/// Fans the observer's events out to WatchEvents subscribers. Each subscriber has a bounded
/// buffer; when it is full, events for that subscriber are dropped and counted (reported in
/// the log), and the observer never waits.
public final class EventHub: Sendable {
    public static let bufferPerSubscriber = 256

    private struct Subscriber {
        let continuation: AsyncStream<NodeEvent>.Continuation
        var dropped = 0
    }

    private struct State {
        var subscribers: [UUID: Subscriber] = [:]
        /// Set by `finishAll`: a stream opened afterwards would keep its WatchEvents call, and
        /// with it the control server's graceful shutdown, waiting forever.
        var finished = false
    }

    private let state = Mutex(State())
    private let logger: Logger

    public init(logger: Logger) { self.logger = logger }

    /// A stream of every event published from now on; already finished once the hub is.
    public func subscribe() -> AsyncStream<NodeEvent> {
        let id = UUID()
        let (stream, continuation) = AsyncStream.makeStream(of: NodeEvent.self,
                                                           bufferingPolicy: .bufferingOldest(Self.bufferPerSubscriber))
        continuation.onTermination = { [weak self] _ in _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) } }
        let open = state.withLock { state in
            if !state.finished { state.subscribers[id] = Subscriber(continuation: continuation) }
            return !state.finished
        }
        if !open { continuation.finish() }
        return stream
    }

    public func publish(_ events: [NodeEvent]) {
        guard !events.isEmpty else { return }
        state.withLock { state in
            for id in state.subscribers.keys {
                for event in events {
                    if case .dropped = state.subscribers[id]!.continuation.yield(event) { state.subscribers[id]!.dropped += 1 }
                }
            }
        }
    }

    /// Logs and resets every subscriber's drop count; returns the total.
    @discardableResult
    public func reportDrops() -> Int {
        let total = state.withLock { state in
            var total = 0
            for id in state.subscribers.keys {
                total += state.subscribers[id]!.dropped
                state.subscribers[id]!.dropped = 0
            }
            return total
        }
        if total > 0 {
            logger.warning("WatchEvents subscribers too slow: events dropped", metadata: ["dropped": "\(total)"])
        }
        return total
    }

    /// Ends every stream, and every one opened later: the node is stopping.
    public func finishAll() {
        // Finish outside the lock: finishing runs onTermination, which takes it.
        let continuations = state.withLock { state in
            state.finished = true
            return state.subscribers.values.map(\.continuation)
        }
        continuations.forEach { $0.finish() }
    }
}
