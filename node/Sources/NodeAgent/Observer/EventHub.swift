import Foundation
import Logging
import PharosProto
import SwiftProtobuf
import Synchronization

/// Polls the data plane and fans events out to WatchEvents subscribers. Each
/// subscriber has a bounded buffer; when it is full, events for that subscriber are
/// dropped and counted (reported in the log), and the observer never waits.
public final class EventHub: Sendable {
    public static let bufferPerSubscriber = 256

    private struct Subscriber {
        let continuation: AsyncStream<Pharos_Node_V1_Event>.Continuation
        var dropped = 0
    }

    private let subscribers = Mutex<[UUID: Subscriber]>([:])
    private let logger: Logger

    public init(logger: Logger) { self.logger = logger }

    public func subscribe() -> AsyncStream<Pharos_Node_V1_Event> {
        let id = UUID()
        let (stream, continuation) = AsyncStream.makeStream(of: Pharos_Node_V1_Event.self,
                                                           bufferingPolicy: .bufferingOldest(Self.bufferPerSubscriber))
        continuation.onTermination = { [weak self] _ in _ = self?.subscribers.withLock { $0.removeValue(forKey: id) } }
        subscribers.withLock { $0[id] = Subscriber(continuation: continuation) }
        return stream
    }

    public var subscriberCount: Int { subscribers.withLock { $0.count } }

    public func publish(_ events: [Pharos_Node_V1_Event]) {
        guard !events.isEmpty else { return }
        subscribers.withLock { all in
            for id in all.keys {
                for event in events {
                    if case .dropped = all[id]!.continuation.yield(event) { all[id]!.dropped += 1 }
                }
            }
        }
    }

    /// Logs and resets every subscriber's drop count; returns the total.
    @discardableResult
    public func reportDrops() -> Int {
        let total = subscribers.withLock { all in
            var total = 0
            for id in all.keys {
                total += all[id]!.dropped
                all[id]!.dropped = 0
            }
            return total
        }
        if total > 0 {
            logger.warning("WatchEvents subscribers too slow: events dropped", metadata: ["dropped": "\(total)"])
        }
        return total
    }

    public func finishAll() {
        // Finish outside the lock: finishing runs onTermination, which takes it.
        let continuations = subscribers.withLock { all in all.values.map(\.continuation) }
        continuations.forEach { $0.finish() }
    }
}

/// The polling loop: every `interval`, asks the data plane for its peers and
/// publishes what `HandshakeTracker` says happened; ERROR when a poll fails.
public struct HandshakeObserver: Sendable {
    public let core: NodeAgentCore
    public let hub: EventHub
    public let interval: Duration

    public init(core: NodeAgentCore, hub: EventHub, interval: Duration = .seconds(5)) {
        self.core = core
        self.hub = hub
        self.interval = interval
    }

    public func run() async {
        var tracker = HandshakeTracker()
        var lastDropReport = ContinuousClock.now
        while !Task.isCancelled {
            let idsByKey = await core.peerIDsByHexKey()
            do {
                let status = try await core.dataPlane.status()
                hub.publish(tracker.step(status.peers, now: Int64(Date().timeIntervalSince1970), idsByKey: idsByKey))
            } catch {
                var event = Pharos_Node_V1_Event()
                event.at = Google_Protobuf_Timestamp(date: Date())
                event.type = .error
                event.protocol = .amneziawg
                event.message = "data-plane poll failed: \(error)"
                hub.publish([event])
            }
            if ContinuousClock.now - lastDropReport > .seconds(60) {
                hub.reportDrops()
                lastDropReport = .now
            }
            do { try await Task.sleep(for: interval) } catch { break }
        }
        if let status = try? await core.dataPlane.status() {
            hub.publish(tracker.disconnectAll(status.peers, now: Int64(Date().timeIntervalSince1970),
                                              idsByKey: await core.peerIDsByHexKey()))
        }
        hub.reportDrops()
        hub.finishAll()
    }
}
