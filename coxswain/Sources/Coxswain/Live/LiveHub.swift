import Foundation
import Synchronization

/// The live plane: node events and alerts fanned out to every subscriber (`GET /ws/events`,
/// the SIEM stream). Each message is encoded once and shared by all subscribers. A
/// subscriber that cannot keep up loses its oldest undelivered messages (its buffer holds
/// `bufferSize`), never slows the publisher or the others; drops are counted.
public final class LiveHub: Sendable {
    public let bufferSize: Int
    private struct State {
        var subscribers: [UInt64: AsyncStream<Message>.Continuation] = [:]
        var nextID: UInt64 = 0
        var published: UInt64 = 0
        var dropped: UInt64 = 0
    }
    private let state = Mutex(State())

    public init(bufferSize: Int = 1024) {
        self.bufferSize = bufferSize
    }

    /// One published event, with its JSON text (encoded once, for every WebSocket).
    public struct Message: Sendable {
        public let event: LiveEvent
        public let json: String
    }

    public struct Subscription: Sendable {
        public let id: UInt64
        public let messages: AsyncStream<Message>
    }

    public func subscribe() -> Subscription {
        let (stream, continuation) = AsyncStream.makeStream(of: Message.self, bufferingPolicy: .bufferingNewest(bufferSize))
        let id = state.withLock { state in
            state.nextID += 1
            state.subscribers[state.nextID] = continuation
            return state.nextID
        }
        continuation.onTermination = { [weak self] _ in self?.unsubscribe(id) }
        return Subscription(id: id, messages: stream)
    }

    public func unsubscribe(_ id: UInt64) {
        let continuation = state.withLock { $0.subscribers.removeValue(forKey: id) }
        continuation?.finish()
    }

    public func publish(_ event: LiveEvent) {
        let message = Message(event: event, json: event.json)
        state.withLock { state in
            state.published += 1
            for continuation in state.subscribers.values {
                if case .dropped = continuation.yield(message) { state.dropped += 1 }
            }
        }
    }

    public struct Counters: Sendable, Equatable {
        public var subscribers: Int
        public var published: UInt64
        public var dropped: UInt64
    }

    public var counters: Counters {
        state.withLock { Counters(subscribers: $0.subscribers.count, published: $0.published, dropped: $0.dropped) }
    }
}
