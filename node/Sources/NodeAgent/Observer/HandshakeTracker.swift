import Foundation
import PharosWireGuard

/// The observer's pure core: given successive polls of the data plane, which events
/// happened. The first poll is a silent baseline; a new handshake is HANDSHAKE_UP (and
/// PEER_CONNECTED when the peer was not connected); a handshake older than
/// `staleAfter` is HANDSHAKE_DOWN + PEER_DISCONNECTED, once.
public struct HandshakeTracker: Sendable {
    public static let staleAfter: Int64 = 180

    struct Seen: Sendable {
        var lastHandshake: Int64
        var connected: Bool
    }

    private var peers: [String: Seen] = [:]
    private var baselined = false

    public init() {}

    /// `idsByKey` maps hex public keys to the controller's peer ids.
    public mutating func step(_ polled: [UAPI.PeerStatus], now: Int64, idsByKey: [String: String]) -> [NodeEvent] {
        var events: [NodeEvent] = []
        var next: [String: Seen] = [:]
        for peer in polled {
            let fresh = peer.lastHandshakeSeconds > 0 && now - peer.lastHandshakeSeconds < Self.staleAfter
            var seen = peers[peer.publicKeyHex] ?? Seen(lastHandshake: 0, connected: false)
            if !baselined {
                next[peer.publicKeyHex] = Seen(lastHandshake: peer.lastHandshakeSeconds, connected: fresh)
                continue
            }
            let id = idsByKey[peer.publicKeyHex] ?? ""
            if peer.lastHandshakeSeconds > seen.lastHandshake, fresh {
                events.append(Self.event(.handshakeUp, peer, id: id, now: now, message: "handshake"))
                if !seen.connected {
                    events.append(Self.event(.peerConnected, peer, id: id, now: now, message: "connected"))
                    seen.connected = true
                }
            } else if seen.connected, !fresh {
                events.append(Self.event(.handshakeDown, peer, id: id, now: now, message: "no handshake for \(Self.staleAfter) s"))
                events.append(Self.event(.peerDisconnected, peer, id: id, now: now, message: "disconnected"))
                seen.connected = false
            }
            seen.lastHandshake = peer.lastHandshakeSeconds
            next[peer.publicKeyHex] = seen
        }
        peers = next
        baselined = true
        return events
    }

    /// PEER_DISCONNECTED for every connected peer: what a graceful shutdown reports.
    public func disconnectAll(_ polled: [UAPI.PeerStatus], now: Int64, idsByKey: [String: String]) -> [NodeEvent] {
        polled.filter { peers[$0.publicKeyHex]?.connected == true }.map {
            Self.event(.peerDisconnected, $0, id: idsByKey[$0.publicKeyHex] ?? "", now: now, message: "node shutting down")
        }
    }

    static func event(_ type: NodeEvent.Kind, _ peer: UAPI.PeerStatus, id: String, now: Int64, message: String) -> NodeEvent {
        NodeEvent(at: Date(timeIntervalSince1970: TimeInterval(now)), type: type, peerID: id, message: message,
                  sourceEndpoint: peer.endpoint, rxBytes: Int64(clamping: peer.rxBytes), txBytes: Int64(clamping: peer.txBytes))
    }
}
