import PharosProto
import SwiftProtobuf

/// ListPeers' and GetMetrics' `PeerState` from a `PeerReport`.
extension Pharos_Node_V1_PeerState {
    init(_ report: PeerReport) {
        self.init()
        switch report {
        case .xrayReality(let client):
            peer = client.proto
        case .amneziaWG(let spec, let live):
            peer = spec.proto
            guard let live else { return }
            rxBytes = live.rxBytes
            txBytes = live.txBytes
            if live.lastHandshakeSeconds > 0 { lastHandshake = Google_Protobuf_Timestamp(seconds: live.lastHandshakeSeconds) }
            peer.endpoints = live.endpoint.isEmpty ? [] : [live.endpoint]
        }
    }
}

extension Pharos_Node_V1_GetMetricsResponse {
    init(_ reports: [PeerReport]) {
        self.init()
        peers = reports.map(Pharos_Node_V1_PeerState.init)
        totalRxBytes = peers.reduce(0) { $0 + $1.rxBytes }
        totalTxBytes = peers.reduce(0) { $0 + $1.txBytes }
    }
}
