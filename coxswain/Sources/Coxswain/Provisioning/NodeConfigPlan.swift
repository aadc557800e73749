import PharosProto
import PharosSpec
import SwiftProtobuf

/// What one node must serve at one revision, as the requests that carry it: PushConfig per
/// protocol, ConfigureInnerLink per cascade hop it starts, RemoveInnerLink per retired one,
/// and SetNetworkConfig (its policy flags and the transit routes of its devices on paths).
/// Built from a single read of the store so content and revision always agree.
public struct NodeConfigPlan: Sendable {
    public var nodeID: String
    public var revision: Int64
    public var requests: [Pharos_Node_V1_PushConfigRequest]
    public var innerLinks: [Pharos_Node_V1_ConfigureInnerLinkRequest] = []
    /// Inner interfaces to remove (links no path uses any more).
    public var retiredLinks: [String] = []
    public var network = Pharos_Node_V1_SetNetworkConfigRequest()

    public static let noCascade = CascadeView(outgoing: [], incoming: [], retired: [])

    public static func build(node: NodeRecord, peers: [PeerRecord], config: CoxConfig,
                             cascade: CascadeView = noCascade) throws -> NodeConfigPlan {
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
        // The previous hop of each link this node ends is one more peer here, holding the
        // addresses of the devices it carries (replies to them go back through it).
        for (link, previous, devices) in cascade.incoming {
            guard let key = previous.wgPublicKey, !key.isEmpty else { continue }
            awg.peers.append(linkPeer(link, key: key, allowedIPs: devices))
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
        var plan = NodeConfigPlan(nodeID: node.id, revision: node.configRevision, requests: requests)
        plan.network = network(node: node, cascade: cascade)
        for (link, next, _) in cascade.outgoing {
            guard let key = next.wgPublicKey, !key.isEmpty else { continue }
            var inner = Pharos_Node_V1_ConfigureInnerLinkRequest()
            inner.revision = node.configRevision
            inner.config.interface = link.innerInterface
            inner.config.listenPort = UInt32(link.listenPort)
            // The next hop's set, where it speaks one (a plain wireguard-go node reports none).
            if let set = try? Pharos_Node_V1_AmneziaWGObfuscation(jsonString: next.wgObfuscation ?? ""),
               set != Pharos_Node_V1_AmneziaWGObfuscation() {
                inner.config.peerObfuscation = set
            }
            inner.config.exit = linkPeer(link, key: key, allowedIPs: ["0.0.0.0/0"])
            inner.config.exit.endpoints = [HostPort(host: next.publicIP.isEmpty ? next.host : next.publicIP, port: next.wgPort).description]
            plan.innerLinks.append(inner)
        }
        plan.retiredLinks = cascade.retired
        return plan
    }

    /// SetNetworkConfig: the node's policy flags, and a transit route per device it sends into
    /// a link whose next hop's key is known (forwarding is on wherever a link starts).
    public static func network(node: NodeRecord, cascade: CascadeView) -> Pharos_Node_V1_SetNetworkConfigRequest {
        var request = Pharos_Node_V1_SetNetworkConfigRequest()
        request.config.forwarding = node.forwarding || !cascade.outgoing.isEmpty
        request.config.masquerade = node.masquerade
        request.config.isolation = node.isolation
        for (link, next, devices) in cascade.outgoing where next.wgPublicKey?.isEmpty == false {
            for device in devices {
                var transit = Pharos_Node_V1_TransitRoute()
                transit.deviceCidr = device
                transit.innerInterface = link.innerInterface
                transit.mark = UInt32(link.fwmark)
                transit.table = UInt32(link.tableID)
                request.config.transits.append(transit)
            }
        }
        return request
    }

    static func linkPeer(_ link: NodeLinkRecord, key: String, allowedIPs: [String]) -> Pharos_Node_V1_Peer {
        var p = Pharos_Node_V1_Peer()
        p.id = "link:\(link.id)"
        p.protocol = .amneziawg
        p.publicKey = key
        p.allowedIps = allowedIPs
        return p
    }
}
