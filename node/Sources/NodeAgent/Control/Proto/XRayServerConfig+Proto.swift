import PharosProto

/// `XRayRealityConfig` and `Peer` (PROTOCOL_XRAY_REALITY) ↔ the XRay domain values, field
/// for field; the core validates.
extension XRayServerConfig {
    init(_ proto: Pharos_Node_V1_XRayRealityConfig) {
        self.init(clients: proto.peers.map(Client.init), dest: proto.dest, serverNames: proto.serverNames,
                  shortIDs: proto.shortIds, port: Int(proto.port))
    }
}

extension XRayServerConfig.Client {
    init(_ proto: Pharos_Node_V1_Peer) {
        self.init(peerID: proto.id, id: proto.publicKey, flow: proto.flow)
    }

    var proto: Pharos_Node_V1_Peer {
        var p = Pharos_Node_V1_Peer()
        p.id = peerID
        p.protocol = .xrayReality
        p.publicKey = id
        p.flow = flow
        return p
    }
}
