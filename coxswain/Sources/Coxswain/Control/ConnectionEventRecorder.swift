import Foundation
import PharosProto

/// Turns one node's WatchEvents stream into `connection_events` rows and remembers who is
/// connected, so that when the stream is lost every open session gets a synthetic
/// disconnect with reason `stream-lost` (the controller cannot know how it really ended).
public actor ConnectionEventRecorder {
    public let nodeID: String
    let store: Store
    let live: LiveHub?
    private(set) var connected: [String: (protocol: String, endpoint: String)] = [:]

    public init(nodeID: String, store: Store, live: LiveHub? = nil) {
        self.nodeID = nodeID
        self.store = store
        self.live = live
    }

    public var connectedPeers: Set<String> { Set(connected.keys) }

    /// Every event goes to the live plane; connects, disconnects and handshakes are also
    /// recorded (HANDSHAKE_DOWN precedes PEER_DISCONNECTED; ERROR is logged by the watcher).
    public func ingest(_ event: Pharos_Node_V1_Event) async throws {
        let proto = event.protocol == .xrayReality ? "xray-reality" : "amneziawg"
        let at = event.hasAt ? Int64(event.at.seconds) * 1_000_000 + Int64(event.at.nanos / 1000) : StoreClock.now()
        let type: String
        switch event.type {
        case .peerConnected: type = "connect"
        case .peerDisconnected: type = "disconnect"
        case .handshakeUp: type = "handshake"
        default:
            live?.publish(.node(.init(nodeID: nodeID, at: at, type: Self.upstreamName(event.type), protocol: proto, peerID: event.peerID,
                                      message: event.message, sourceEndpoint: event.sourceEndpoint)))
            return
        }
        let input = ConnectionEventInput(at: at, nodeID: nodeID, peerID: event.peerID, protocol: proto, eventType: type,
                                         sourceEndpoint: event.sourceEndpoint, rxBytes: event.rxBytes, txBytes: event.txBytes)
        let record = try await store.write { tx in try tx.recordConnectionEvent(input) }
        live?.publish(.node(Self.liveEvent(record, type: Self.upstreamName(event.type), message: event.message)))
        switch type {
        case "connect": connected[event.peerID] = (proto, event.sourceEndpoint)
        case "disconnect": connected[event.peerID] = nil
        default: break
        }
    }

    /// `EventType` as upstream's JSON names it.
    static func upstreamName(_ type: Pharos_Node_V1_EventType) -> String {
        switch type {
        case .handshakeUp: "HANDSHAKE_UP"
        case .handshakeDown: "HANDSHAKE_DOWN"
        case .peerConnected: "PEER_CONNECTED"
        case .peerDisconnected: "PEER_DISCONNECTED"
        case .error: "ERROR"
        default: "UNSPECIFIED"
        }
    }

    /// The stream dropped: close every open session with `stream-lost`.
    @discardableResult
    public func streamLost() async throws -> Int {
        let open = connected
        connected.removeAll()
        guard !open.isEmpty else { return 0 }
        let nodeID = self.nodeID
        let now = StoreClock.now()
        let records = try await store.write { tx in
            try open.sorted(by: { $0.key < $1.key }).map { peerID, session in
                try tx.recordConnectionEvent(ConnectionEventInput(at: now, nodeID: nodeID, peerID: peerID, protocol: session.protocol,
                                                                  eventType: "disconnect", sourceEndpoint: session.endpoint,
                                                                  reason: "stream-lost"))
            }
        }
        for record in records { live?.publish(.node(Self.liveEvent(record, type: "PEER_DISCONNECTED"))) }
        return open.count
    }

    /// The live plane's (and the SIEM stream's) view of a recorded event.
    static func liveEvent(_ record: ConnectionEventRecord, type: String, message: String = "") -> LiveEvent.NodeEvent {
        var event = LiveEvent.NodeEvent(nodeID: record.nodeID, at: record.at, type: type, protocol: record.protocol, peerID: record.peerID,
                                        message: message, sourceEndpoint: record.sourceEndpoint, deviceID: record.deviceID,
                                        userID: record.userID)
        event.rxBytes = record.rxBytes
        event.txBytes = record.txBytes
        event.reason = record.reason
        event.sourceIP = record.sourceIP
        return event
    }
}
