import PharosProto

/// `Peer` (PROTOCOL_AMNEZIAWG) ↔ `PeerSpec`. The mapping copies fields and judges nothing:
/// the core validates, after its revision fence.
extension PeerSpec {
    init(_ proto: Pharos_Node_V1_Peer) {
        self.init(id: proto.id, publicKey: proto.publicKey, presharedKey: proto.presharedKey, allowedIPs: proto.allowedIps,
                  endpoint: proto.endpoints.first)
    }

    var proto: Pharos_Node_V1_Peer {
        var p = Pharos_Node_V1_Peer()
        p.id = id
        p.protocol = .amneziawg
        p.publicKey = publicKey
        p.presharedKey = presharedKey
        p.allowedIps = allowedIPs
        p.endpoints = endpoint.map { [$0] } ?? []
        return p
    }
}
