import Foundation
import ServiceLifecycle

/// The polling loop, run as a service: every `interval`, asks the data plane for its peers and
/// publishes what `HandshakeTracker` says happened; ERROR when a poll fails. At shutdown it
/// reports every live peer disconnected and ends the WatchEvents streams, which lets the
/// control server's graceful shutdown finish (so it must stop before the control server).
public struct HandshakeObserver: Service {
    public let core: NodeAgentCore
    public let hub: EventHub
    public let interval: Duration

    public init(core: NodeAgentCore, hub: EventHub, interval: Duration = .seconds(5)) {
        self.core = core
        self.hub = hub
        self.interval = interval
    }

    public func run() async {
        // Graceful shutdown cancels the polling; the report of who was connected still goes out.
        let tracker = await cancelWhenGracefulShutdown { await poll() }
        if let status = try? await core.dataPlane.status() {
            hub.publish(tracker.disconnectAll(status.peers, now: Int64(Date().timeIntervalSince1970),
                                              idsByKey: await core.peerIDsByHexKey()))
        }
        hub.reportDrops()
        hub.finishAll()
    }

    /// Polls until cancelled; returns what the tracker knows then.
    private func poll() async -> HandshakeTracker {
        var tracker = HandshakeTracker()
        var lastDropReport = ContinuousClock.now
        while !Task.isCancelled {
            let idsByKey = await core.peerIDsByHexKey()
            do {
                let status = try await core.dataPlane.status()
                hub.publish(tracker.step(status.peers, now: Int64(Date().timeIntervalSince1970), idsByKey: idsByKey))
            } catch {
                hub.publish([NodeEvent(at: Date(), type: .error, message: "data-plane poll failed: \(error)")])
            }
            if ContinuousClock.now - lastDropReport > .seconds(60) {
                hub.reportDrops()
                lastDropReport = .now
            }
            do { try await Task.sleep(for: interval) } catch { break }
        }
        return tracker
    }
}
