import PharosProto
import SwiftProtobuf

/// WatchEvents' `Event` from a `NodeEvent`.
extension Pharos_Node_V1_Event {
    init(_ event: NodeEvent) {
        self.init()
        at = Google_Protobuf_Timestamp(date: event.at)
        type = switch event.type {
        case .handshakeUp: .handshakeUp
        case .handshakeDown: .handshakeDown
        case .peerConnected: .peerConnected
        case .peerDisconnected: .peerDisconnected
        case .error: .error
        }
        // Every event is about the AmneziaWG plane (see NodeEvent).
        `protocol` = .amneziawg
        peerID = event.peerID
        message = event.message
        sourceEndpoint = event.sourceEndpoint
        rxBytes = event.rxBytes
        txBytes = event.txBytes
    }
}
