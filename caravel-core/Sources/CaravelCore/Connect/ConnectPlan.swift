import Foundation
import PharosSpec

/// What a connect needs, resolved from a stored bundle by upstream's rules: profile by id
/// or name (else the first); node by id or name (else the path's entry hop, else the first);
/// `both` → AmneziaWG unless XRay is asked for; keepalive 25 s; MTU 1420 unless the profile
/// says otherwise; routes 0.0.0.0/0 + ::/0; DNS 1.1.1.1; a random endpoint (and port) from
/// the pool.
public struct ConnectPlan: Sendable, Equatable {
    public enum Engine: String, Sendable { case amneziaWG = "amneziawg", xrayReality = "xray-reality" }

    public static let defaultMTU = 1420
    public static let keepaliveSeconds = 25
    /// Upstream's resolver for every profile (a bundle names none).
    public static let defaultDNS = ["1.1.1.1"]

    public var entry: String
    public var profileID: String
    public var profileName: String
    public var nodeName: String
    public var engine: Engine
    public var mtu: Int
    public var routes: [String]
    /// The resolvers the host uses while the tunnel holds the default route.
    public var dns: [String] = defaultDNS
    public var endpointHost: String
    public var endpointPort: Int
    /// Set for AmneziaWG.
    public var wireGuard: AmneziaWGParams?
    /// Set for XRay.
    public var xray: XRayRealityParams?

    /// `host:port`, an IPv6 host in brackets: what UAPI's `endpoint=` and the messages show.
    public var endpoint: String { HostPort(host: endpointHost, port: endpointPort).description }

    public static func resolve<R: RandomNumberGenerator>(entry: ProfileStore.Entry, profile: String? = nil, node: String? = nil,
                                                         engine preferred: Engine? = nil,
                                                         using rng: inout R) throws(CaravelError) -> ConnectPlan {
        let profiles = entry.bundle.profiles
        guard !profiles.isEmpty else { throw .notFound("\(entry.name) holds no profiles; sync again or ask your administrator") }
        let chosen: ClientProfile
        if let profile {
            guard let match = profiles.first(where: { $0.id == profile || $0.name == profile }) else {
                throw .notFound("\(entry.name) has no profile \"\(profile)\"; it has: \(profiles.map(\.name).joined(separator: ", "))")
            }
            chosen = match
        } else {
            chosen = profiles[0]
        }
        guard !chosen.nodes.isEmpty else { throw .notFound("profile \(chosen.name) names no node") }
        let target: ProfileNode
        if let node {
            guard let match = chosen.nodes.first(where: { $0.id == node || $0.name == node }) else {
                throw .notFound("profile \(chosen.name) has no node \"\(node)\"; it has: \(chosen.nodes.map(\.name).joined(separator: ", "))")
            }
            target = match
        } else if let entryHop = chosen.path?.hops.first(where: { $0.role == "entry" }),
                  let match = chosen.nodes.first(where: { $0.id == entryHop.id }) {
            target = match
        } else {
            target = chosen.nodes[0]
        }
        var wireGuard: AmneziaWGParams?, xray: XRayRealityParams?
        for proto in target.protocols {
            switch proto {
            case .amneziaWG(let params): wireGuard = params
            case .xrayReality(let params): xray = params
            }
        }
        let engine: Engine
        switch preferred {
        case .xrayReality?:
            guard xray != nil else { throw .notFound("node \(target.name) offers no XRay REALITY in profile \(chosen.name)") }
            engine = .xrayReality
        case .amneziaWG?:
            guard wireGuard != nil else { throw .notFound("node \(target.name) offers no AmneziaWG in profile \(chosen.name)") }
            engine = .amneziaWG
        case nil:
            if wireGuard != nil, chosen.protocolChoice != .xrayReality { engine = .amneziaWG }
            else if xray != nil { engine = .xrayReality }
            else if wireGuard != nil { engine = .amneziaWG }
            else { throw .notFound("node \(target.name) offers no protocol this client speaks") }
        }
        let pool = engine == .amneziaWG ? wireGuard!.endpoints : xray!.endpoints
        let (host, port) = pick(pool: pool, fallbackHosts: target.endpoints, using: &rng)
        guard !host.isEmpty else { throw .notFound("node \(target.name) has no endpoint address in profile \(chosen.name)") }
        let allowed = engine == .amneziaWG ? wireGuard!.allowedIPs : xray!.allowedIPs
        return ConnectPlan(entry: entry.name, profileID: chosen.id, profileName: chosen.name, nodeName: target.name, engine: engine,
                           mtu: chosen.mtu ?? defaultMTU,
                           routes: allowed.isEmpty ? ["0.0.0.0/0", "::/0"] : allowed,
                           endpointHost: host, endpointPort: port,
                           wireGuard: engine == .amneziaWG ? wireGuard : nil, xray: engine == .xrayReality ? xray : nil)
    }

    public static func resolve(entry: ProfileStore.Entry, profile: String? = nil, node: String? = nil,
                               engine: Engine? = nil) throws(CaravelError) -> ConnectPlan {
        var rng = SystemRandomNumberGenerator()
        return try resolve(entry: entry, profile: profile, node: node, engine: engine, using: &rng)
    }

    /// A random pool entry and a random port in its range; port 443 when there is no pool.
    static func pick<R: RandomNumberGenerator>(pool: [EndpointPool], fallbackHosts: [String], using rng: inout R) -> (String, Int) {
        if let chosen = pool.filter({ !$0.ip.isEmpty }).randomElement(using: &rng) {
            let low = max(1, min(chosen.portMin, chosen.portMax)), high = max(chosen.portMin, chosen.portMax)
            return (chosen.ip, high >= 1 ? Int.random(in: low...max(low, high), using: &rng) : 443)
        }
        return (fallbackHosts.randomElement(using: &rng) ?? "", 443)
    }
}
