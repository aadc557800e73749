import PharosProto
import PharosSpec
import SwiftProtobuf

/// What one node must serve at one revision, as the PushConfig requests that carry it.
/// Built from a single read of the store so content and revision always agree.
public struct NodeConfigPlan: Sendable {
    public var nodeID: String
    public var revision: Int64
    public var requests: [Pharos_Node_V1_PushConfigRequest]

    public static func build(node: NodeRecord, peers: [PeerRecord], config: CoxConfig) throws -> NodeConfigPlan {
        var awg = Pharos_Node_V1_AmneziaWGConfig()
        var xrayPeers: [Pharos_Node_V1_Peer] = []
        for peer in peers {
            var p = Pharos_Node_V1_Peer()
            p.id = peer.id
            p.publicKey = peer.publicKey
            p.allowedIps = [peer.allowedIP]
            p.endpoints = []
            switch peer.protocol {
            case .amneziawg:
                p.protocol = .amneziawg
                p.presharedKey = peer.presharedKey
                awg.peers.append(p)
            case .xrayReality:
                p.protocol = .xrayReality
                p.flow = peer.flow
                xrayPeers.append(p)
            }
        }
        var requests: [Pharos_Node_V1_PushConfigRequest] = []
        var request = Pharos_Node_V1_PushConfigRequest()
        request.protocol = .amneziawg
        request.revision = node.configRevision
        request.config = try awg.serializedData()
        requests.append(request)
        if node.xrayPublicKey?.isEmpty == false, config.xray || !xrayPeers.isEmpty {
            var xray = Pharos_Node_V1_XRayRealityConfig()
            xray.peers = xrayPeers
            xray.dest = "\(config.decoySite):443"
            xray.serverNames = [config.decoySite]
            xray.shortIds = [""]
            xray.port = UInt32(PharosPorts.xrayReality)
            var x = Pharos_Node_V1_PushConfigRequest()
            x.protocol = .xrayReality
            x.revision = node.configRevision
            x.config = try xray.serializedData()
            requests.append(x)
        }
        return NodeConfigPlan(nodeID: node.id, revision: node.configRevision, requests: requests)
    }
}
