import Crypto
import Foundation
import PharosProtoMapping
import PharosSpec

/// Pure planning of what one device gets: its peers on every node its profile specs name
/// and the bundle that tells the device how to reach them. A fresh WireGuard key and fresh
/// pre-shared keys are drawn at every provisioning (from `keys`, the system's CSPRNG unless a
/// test fixes them): the private half lives only inside the sealed bundle, which the
/// controller cannot open again.
public enum DeviceProvisioning {
    public struct Plan: Sendable {
        public var peers: [PeerRecord]
        public var bundle: ProfileBundle
    }

    public static let xrayFlow = "xtls-rprx-vision"

    public static func plan(device: DeviceRecord, user: UserRecord, specs: [ProfileSpecRecord], nodes: [String: NodeRecord],
                            config: CoxConfig, fleetID: String, revision: Int64, now: Date,
                            keys: ProvisioningKeys = .system, paths: [String: PathRecord] = [:],
                            exit: PathRecord? = nil) throws(ProvisioningError) -> Plan {
        let key = keys.wireGuardKey()
        let privateKey = key.rawRepresentation.base64EncodedString()
        let publicKey = key.publicKey.rawRepresentation.base64EncodedString()
        var peers: [PeerRecord] = []
        var profiles: [ClientProfile] = []
        var presharedKeys: [String: String] = [:]
        let createdAt = Int64(now.timeIntervalSince1970 * 1_000_000)

        // The profiles must agree among themselves (or unbinding could never succeed), and
        // with the binding.
        let names = nodes.mapValues(\.name)
        try checkRoutes(device: device, specs: specs, paths: paths, exit: nil, names: names)
        if exit != nil { try checkRoutes(device: device, specs: specs, paths: paths, exit: exit, names: names) }
        for spec in specs {
            // A path spec places the device on the path's entry; the next hops carry it on.
            var path: PathRecord?
            if let pathID = spec.pathID {
                guard let found = paths[pathID], found.hops.count >= 2 else { throw .pathsNotSupported(spec: spec.name) }
                path = found
            }
            guard let nodeID = spec.nodeID ?? path?.hops.first else { throw .pathsNotSupported(spec: spec.name) }
            guard let node = nodes[nodeID] else { continue }  // removed in this same transaction
            guard node.isPlaceable, let wgKey = node.wgPublicKey else { throw .nodeNotReady(node: node.name) }
            let entryIPs = entries(spec: spec, node: node)
            var protocols: [NodeProtocol] = []
            if spec.protocol.includesAmneziaWG {
                let psk = presharedKeys[nodeID] ?? keys.presharedKey()
                presharedKeys[nodeID] = psk
                if !peers.contains(where: { $0.nodeID == nodeID && $0.protocol == .amneziawg }) {
                    peers.append(PeerRecord(id: keys.peerID(), nodeID: nodeID, deviceID: device.id, protocol: .amneziawg,
                                            publicKey: publicKey, allowedIP: "\(device.tunnelIP)/32", presharedKey: psk,
                                            flow: "", profileSpecID: spec.id, createdAt: createdAt))
                }
                protocols.append(.amneziaWG(AmneziaWGParams(
                    privateKey: privateKey, address: "\(device.tunnelIP)/32", publicKey: wgKey, presharedKey: psk,
                    endpoints: entryIPs.map { EndpointPool(ip: $0, portMin: node.wgPort, portMax: node.wgPort) },
                    rotation: RotationPolicy(enabled: config.rotationEnabled, intervalSeconds: config.rotationIntervalSeconds,
                                             jitterSeconds: config.rotationJitterSeconds),
                    allowedIPs: ["0.0.0.0/0", "::/0"], obfuscation: Obfuscation(protoJSON: node.wgObfuscation))))
            }
            if spec.protocol.includesXRay {
                guard let realityKey = node.xrayPublicKey, !realityKey.isEmpty else {
                    throw .protocolUnavailable(node: node.name, protocol: "xray-reality")
                }
                let uuid = peers.first(where: { $0.nodeID == nodeID && $0.protocol == .xrayReality })?.publicKey
                    ?? keys.xrayUUID()
                if !peers.contains(where: { $0.nodeID == nodeID && $0.protocol == .xrayReality }) {
                    peers.append(PeerRecord(id: keys.peerID(), nodeID: nodeID, deviceID: device.id, protocol: .xrayReality,
                                            publicKey: uuid, allowedIP: "\(device.tunnelIP)/32", presharedKey: "",
                                            flow: xrayFlow, profileSpecID: spec.id, createdAt: createdAt))
                }
                protocols.append(.xrayReality(XRayRealityParams(
                    uuid: uuid, flow: xrayFlow, address: "\(device.tunnelIP)/32", publicKey: realityKey,
                    serverName: config.decoySite, shortID: "", fingerprint: "",
                    endpoints: entryIPs.map { EndpointPool(ip: $0, portMin: PharosPorts.xrayReality, portMax: PharosPorts.xrayReality) },
                    allowedIPs: ["0.0.0.0/0", "::/0"])))
            }
            let choice = ClientProfile.ProtocolChoice(rawValue: spec.protocol.rawValue) ?? .amneziaWG
            var view: PathView?
            var mtu: Int?
            // Bound to a path entering here (a live exit), the device's AmneziaWG traffic takes
            // that one (XRay's still leaves here).
            if let exit, exit.hops.first == nodeID, exit.hops.count >= 2, spec.protocol.includesAmneziaWG { path = exit }
            if let path {
                let last = path.hops.count - 1
                view = PathView(name: path.name, hops: path.hops.enumerated().map { index, hopID in
                    let hop = nodes[hopID]
                    return PathHop(id: hopID, name: hop?.name ?? hopID, region: hop?.region ?? "",
                                   role: index == 0 ? "entry" : index == last ? "exit" : "mid",
                                   ips: index == 0 ? entryIPs : hop.map { [$0.publicIP.isEmpty ? $0.host : $0.publicIP] } ?? [])
                })
                mtu = cascadeMTU(hops: path.hops.count)
            }
            profiles.append(ClientProfile(id: spec.id, name: spec.name, protocolChoice: choice, nodes: [
                ProfileNode(id: node.id, name: node.name, region: node.region, endpoints: entryIPs, protocols: protocols),
            ], path: view, mtu: mtu))
        }
        let bundle = ProfileBundle(fleetID: fleetID, user: user.email ?? user.id, revision: revision,
                                   issuedAt: rfc3339(now), expiresAt: rfc3339(now.addingTimeInterval(365 * 86400)),
                                   profiles: profiles)
        return Plan(peers: peers, bundle: bundle)
    }

    /// What each node does with the device's traffic: where it comes from (the device itself,
    /// or the previous hop of a path) and where it goes (out of this node, or to the next hop).
    /// One way per node: a node routes an address one way, and marks its traffic by source, so
    /// two profiles that disagree would send one of them out the wrong exit. `exit` (the path
    /// the device is bound to) replaces the hops of every spec entering where it does.
    public static func checkRoutes(device: DeviceRecord, specs: [ProfileSpecRecord], paths: [String: PathRecord],
                                   exit: PathRecord?, names: [String: String]) throws(ProvisioningError) {
        var route: [String: String] = [:]
        for spec in specs {
            var hops = spec.nodeID.map { [$0] } ?? spec.pathID.flatMap { paths[$0]?.hops } ?? []
            if let exit, exit.hops.count >= 2, exit.hops.first == hops.first { hops = exit.hops }
            for (index, hop) in hops.enumerated() {
                let way = (index == 0 ? "device" : hops[index - 1]) + ">" + (index == hops.count - 1 ? "out" : hops[index + 1])
                if let other = route[hop], other != way { throw .cascadeConflict(device: device.name, node: names[hop] ?? hop) }
                route[hop] = way
            }
        }
    }

    /// The client's MTU on a path of `hops` nodes: 1420 less 80 bytes (a WireGuard header
    /// over IPv6, the larger) for every inner link its packets cross, never under 1280.
    public static func cascadeMTU(hops: Int) -> Int { max(1280, 1420 - 80 * max(0, hops - 1)) }

    /// The entry IPs of a spec: its subset when given, else the node's public IPs.
    static func entries(spec: ProfileSpecRecord, node: NodeRecord) -> [String] {
        let subset = spec.entryIPs.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if !subset.isEmpty { return subset }
        var all = [node.publicIP.isEmpty ? node.host : node.publicIP]
        all += node.endpointIPs.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !all.contains($0) }
        return all
    }

    static func rfc3339(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
