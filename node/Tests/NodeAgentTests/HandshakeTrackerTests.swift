import Foundation
import PharosWireGuard
import Testing
@testable import NodeAgent

@Suite struct HandshakeTrackerTests {
    let key = String(repeating: "ab", count: 32)

    func peer(handshake: Int64, rx: UInt64 = 0) -> UAPI.PeerStatus {
        var p = UAPI.PeerStatus(publicKeyHex: key)
        p.lastHandshakeSeconds = handshake
        p.endpoint = "192.0.2.2:51000"
        p.rxBytes = rx
        return p
    }

    @Test func connectRekeyAndStaleDisconnectOnce() {
        var tracker = HandshakeTracker()
        let ids = [key: "dev-1"]
        #expect(tracker.step([peer(handshake: 0)], now: 1000, idsByKey: ids).isEmpty, "the first poll is a silent baseline")
        let up = tracker.step([peer(handshake: 1003, rx: 148)], now: 1005, idsByKey: ids)
        #expect(up.map(\.type) == [.handshakeUp, .peerConnected])
        #expect(up[1].peerID == "dev-1" && up[1].sourceEndpoint == "192.0.2.2:51000" && up[1].rxBytes == 148)
        #expect(tracker.step([peer(handshake: 1003)], now: 1010, idsByKey: ids).isEmpty, "no change, no event")
        #expect(tracker.step([peer(handshake: 1125)], now: 1130, idsByKey: ids).map(\.type) == [.handshakeUp], "a rekey is not a reconnect")
        let down = tracker.step([peer(handshake: 1125)], now: 1125 + 181, idsByKey: ids)
        #expect(down.map(\.type) == [.handshakeDown, .peerDisconnected])
        #expect(tracker.step([peer(handshake: 1125)], now: 1125 + 400, idsByKey: ids).isEmpty, "disconnect is reported once")
    }

    @Test func baselineOfAConnectedPeerStillReportsItsDisconnect() {
        var tracker = HandshakeTracker()
        _ = tracker.step([peer(handshake: 990)], now: 1000, idsByKey: [:])
        #expect(tracker.step([peer(handshake: 990)], now: 990 + 200, idsByKey: [:]).map(\.type) == [.handshakeDown, .peerDisconnected])
    }

    @Test func shutdownDisconnectsLivePeers() {
        var tracker = HandshakeTracker()
        _ = tracker.step([], now: 1000, idsByKey: [:])
        _ = tracker.step([peer(handshake: 1001)], now: 1002, idsByKey: [:])
        #expect(tracker.disconnectAll([peer(handshake: 1001)], now: 1003, idsByKey: [:]).map(\.type) == [.peerDisconnected])
    }
}

@Suite struct EventHubTests {
    let event = NodeEvent(at: Date(), type: .handshakeUp, message: "handshake")

    @Test func aSlowSubscriberLosesEventsButNeverBlocksTheObserver() async {
        let hub = EventHub(logger: Support.logger)
        let stream = hub.subscribe()
        hub.publish(Array(repeating: event, count: EventHub.bufferPerSubscriber + 44))
        #expect(hub.reportDrops() == 44)
        hub.finishAll()
        var received = 0
        for await _ in stream { received += 1 }
        #expect(received == EventHub.bufferPerSubscriber)
    }

    /// A WatchEvents call that arrives while the node stops must not hold up its shutdown.
    @Test func aSubscriptionAfterTheHubFinishedEndsAtOnce() async {
        let hub = EventHub(logger: Support.logger)
        hub.finishAll()
        let stream = hub.subscribe()
        hub.publish([event])
        var received = 0
        for await _ in stream { received += 1 }
        #expect(received == 0)
    }
}
