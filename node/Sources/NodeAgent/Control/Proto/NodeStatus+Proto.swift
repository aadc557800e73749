import PharosProto
import PharosProtoMapping

/// GetStatus' answer from a `NodeStatus`.
extension Pharos_Node_V1_GetStatusResponse {
    init(_ status: NodeStatus, agentVersion: String) {
        self.init()
        self.agentVersion = agentVersion
        uptimeSeconds = status.uptimeSeconds
        appliedRevision = status.appliedRevision
        services = [Pharos_Node_V1_ServiceStatus(status.amneziaWG, protocol: .amneziawg),
                    Pharos_Node_V1_ServiceStatus(status.xrayReality, protocol: .xrayReality)]
        amneziawg.publicKey = status.amneziaWGPublicKey
        // Absent when the plane cannot speak it (plain WireGuard): no set is announced that is not applied.
        if let obfuscation = status.obfuscation { amneziawg.obfuscation = obfuscation.proto }
        xray.publicKey = status.xrayPublicKey
    }
}

extension Pharos_Node_V1_ServiceStatus {
    init(_ status: NodeStatus.ServiceStatus, protocol: Pharos_Node_V1_Protocol) {
        self.init()
        self.protocol = `protocol`
        running = status.running
        listening = status.listening
        detail = status.detail
        peerCount = UInt32(clamping: status.peerCount)
        newestHandshakeAgeSeconds = status.newestHandshakeAge ?? -1
        handshakingPeers = UInt32(clamping: status.handshakingPeers)
    }
}
