#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PharosSpec
import PharosWireGuard

/// What `caravel connect` does to the host for an AmneziaWG plan, as data: the daemon to
/// start, the one UAPI transaction that configures it, and each iproute2 step with the argv
/// that exactly undoes it. Pure, so the routing rules are tested without root; `LinuxTunnel`
/// runs it. With the default route, 0.0.0.0/1 + 128.0.0.0/1 go into the tunnel (more
/// specific than any default route, so none of the system's routes is touched) and the
/// endpoint is pinned to the path it takes now, or the tunnel's own packets would loop into
/// the tunnel. IPv6 must not go around the tunnel: ::/1 + 8000::/1 go into it when the
/// tunnel has an IPv6 address, and are unreachable otherwise (applications fall back to IPv4
/// at once instead of leaking). DNS goes to the profile's resolvers (`nameservers`).
public struct TunnelPlan: Sendable, Equatable {
    public struct Step: Sendable, Equatable {
        public var apply: [String]
        /// nil: removed with the link, as the address and every route `dev <interface>` are.
        public var teardown: [String]?

        public init(apply: [String], teardown: [String]? = nil) {
            self.apply = apply
            self.teardown = teardown
        }
    }

    public var interface: String
    /// The userspace WireGuard daemon, started as `daemon interface`.
    public var daemon: String
    /// Where that daemon opens its UAPI socket.
    public var socketPath: String
    /// The one `set=1` transaction that configures the device. It holds the private key, so
    /// it goes to the socket and nowhere else (never into `TunnelState`).
    public var configuration: UAPI.Set
    /// Run in order once the device is configured.
    public var steps: [Step]
    /// What `/etc/resolv.conf` names while the tunnel is up; empty: the host's DNS is left alone.
    public var nameservers: [String]
    /// All IPv4 goes into the tunnel (the default route's halves).
    public var takesAllTraffic = false
    /// The endpoint rotation the profile asks for, narrowed to the addresses this plan can
    /// move to (with the default route: those pinned to their present path); nil: none.
    public var rotation: EndpointRotation?
    public enum IPv6: Sendable, Equatable { case untouched, carried, blocked }
    public var ipv6 = IPv6.untouched

    /// Whose resolvers the host uses while the tunnel is up.
    public enum DNS: Sendable, Equatable {
        /// The profile's (`ConnectPlan.dns`), when the tunnel takes the default route.
        case profile
        /// These, whatever the routes.
        case servers([String])
        /// The host's own: nothing is changed.
        case system
    }

    /// What the host offers that the plan depends on, observed before anything of ours exists.
    public struct Host: Sendable, Equatable {
        /// How the endpoint (`endpointToObserve`) is reached now; nil: not asked, or no device named.
        public var endpointRoute: EndpointRoute?
        /// The kernel speaks IPv6 (`/proc/net/if_inet6` exists), so IPv6 could go around the tunnel.
        public var ipv6: Bool
        /// systemd-resolved serves this network namespace: its per-link DNS is set too.
        public var resolved: Bool
        /// How the other addresses the endpoint may rotate to (`rotationHostsToObserve`) are
        /// reached now; an address missing here is not rotated to while the tunnel holds the
        /// default route (its packets would loop into the tunnel).
        public var rotationRoutes: [String: EndpointRoute]

        public init(endpointRoute: EndpointRoute? = nil, ipv6: Bool, resolved: Bool = false,
                    rotationRoutes: [String: EndpointRoute] = [:]) {
            self.endpointRoute = endpointRoute
            self.ipv6 = ipv6
            self.resolved = resolved
            self.rotationRoutes = rotationRoutes
        }
    }

    /// What undoes the steps that outlive the interface, last first. The link goes after
    /// them (the daemon's exit and `ip link del` remove it), and with it everything else.
    public var teardown: [[String]] { steps.reversed().compactMap(\.teardown) }

    /// The address whose present route `make` needs (`ip route get`), or nil: the endpoint
    /// when all traffic goes into the tunnel (an IPv6 one only when the host speaks IPv6, as
    /// only then do IPv6 routes change).
    public static func endpointToObserve(for connect: ConnectPlan, defaultRoute: Bool, ipv6: Bool) -> String? {
        guard connect.engine == .amneziaWG, takesDefaultRoute(connect, defaultRoute) else { return nil }
        guard isIPv4(connect.endpointHost) || (ipv6 && isIPv6(connect.endpointHost)) else { return nil }
        return connect.endpointHost
    }

    /// The other addresses of the endpoint pool whose present route `make` needs when the
    /// profile rotates endpoints and the tunnel takes the default route.
    public static func rotationHostsToObserve(for connect: ConnectPlan, defaultRoute: Bool, ipv6: Bool) -> [String] {
        guard connect.engine == .amneziaWG, takesDefaultRoute(connect, defaultRoute),
              let rotation = connect.wireGuard.flatMap(EndpointRotation.init) else { return [] }
        return rotation.hosts.filter { $0 != connect.endpointHost && (isIPv4($0) || (ipv6 && isIPv6($0))) }
    }

    /// - Parameters: `daemon` is the located binary (amneziawg-go or wireguard-go); `host`
    ///   what the host offers, its `endpointRoute` the answer for `endpointToObserve`.
    public static func make(_ connect: ConnectPlan, interface: String, defaultRoute: Bool, daemon: String,
                            host: Host, dns: DNS = .profile) throws(TunnelPlanError) -> TunnelPlan {
        guard let params = connect.wireGuard, connect.engine == .amneziaWG else { throw .notAmneziaWG }
        if !params.obfuscation.isEmpty, daemon.hasSuffix("wireguard-go") {
            throw .obfuscationUnsupported(node: connect.nodeName, daemon: daemon)
        }
        guard let privateKey = WireGuardKey.hex(fromBase64: params.privateKey),
              let peerKey = WireGuardKey.hex(fromBase64: params.publicKey) else { throw .malformedKeys }
        let presharedKey: String?
        if params.presharedKey.isEmpty {
            presharedKey = nil
        } else {
            // A PSK that does not decode would otherwise go out as "none": no handshake, no error.
            guard let decoded = WireGuardKey.hex(fromBase64: params.presharedKey) else { throw .malformedKeys }
            presharedKey = decoded
        }
        guard isIPv4(connect.endpointHost) || isIPv6(connect.endpointHost) else {
            throw .endpointNotAnAddress(node: connect.nodeName, host: connect.endpointHost)
        }
        // Everything below goes into a UAPI line or an `ip` argument: a value with a newline
        // would add UAPI keys of the profile's choosing, so each is checked for what it is.
        guard (1...65535).contains(connect.endpointPort) else { throw .portOutOfRange(node: connect.nodeName, port: connect.endpointPort) }
        guard CIDR.isValid(params.address) else { throw .notANetwork(field: "address", value: params.address) }
        for route in connect.routes where !CIDR.isValid(route) { throw .notANetwork(field: "allowed_ips", value: route) }
        if let key = params.obfuscation.unsafeTemplateKey { throw .unsafeObfuscation(node: connect.nodeName, key: key) }
        guard (576...65535).contains(connect.mtu) else { throw .mtuOutOfRange(connect.mtu) }
        guard isInterfaceName(interface) else { throw .badInterfaceName(interface) }
        let fullTunnel = takesDefaultRoute(connect, defaultRoute)
        let nameservers: [String] = switch dns {
        case .profile: fullTunnel ? connect.dns : []
        case .servers(let servers): servers
        case .system: []
        }
        // Each becomes a `nameserver` line: an address and nothing else.
        for server in nameservers where !(isIPv4(server) || isIPv6(server)) { throw .notAnAddress(field: "DNS server", value: server) }

        let configuration = UAPI.Set(
            privateKeyHex: privateKey, deviceLines: params.obfuscation.isEmpty ? [] : params.obfuscation.uapiLines,
            replacePeers: true, peers: [
                UAPI.Peer(publicKeyHex: peerKey, presharedKeyHex: presharedKey, allowedIPs: connect.routes,
                          endpoint: connect.endpoint, persistentKeepaliveSeconds: ConnectPlan.keepaliveSeconds),
            ])
        var ipv6 = IPv6.untouched
        var steps = [
            Step(apply: ["ip", "address", "add", params.address, "dev", interface]),
            Step(apply: ["ip", "link", "set", "dev", interface, "mtu", String(connect.mtu), "up"]),
        ]
        if fullTunnel {
            if let pin = pin(connect.endpointHost, to: host.endpointRoute) {
                steps.append(Step(apply: ["ip", "route", "add"] + pin, teardown: ["ip", "route", "del"] + pin))
            }
            // Every address the endpoint may rotate to keeps its present path too.
            for (other, route) in host.rotationRoutes.sorted(by: { $0.key < $1.key }) where other != connect.endpointHost {
                if let pin = pin(other, to: route) {
                    steps.append(Step(apply: ["ip", "route", "add"] + pin, teardown: ["ip", "route", "del"] + pin))
                }
            }
            for half in ["0.0.0.0/1", "128.0.0.0/1"] {
                steps.append(Step(apply: ["ip", "route", "add", half, "dev", interface]))
            }
            if host.ipv6 {
                ipv6 = CIDR.parse(params.address)?.bytes.count == 16 && connect.routes.contains("::/0") ? .carried : .blocked
                for half in ipv6Halves {
                    steps.append(ipv6 == .carried
                        ? Step(apply: ["ip", "-6", "route", "add", half, "dev", interface])
                        : Step(apply: ["ip", "-6", "route", "add", "unreachable", half],
                               teardown: ["ip", "-6", "route", "del", "unreachable", half]))
                }
            }
        } else {
            // The profile's own IPv4 networks; its address is already on the interface.
            for route in ipv4Routes(connect) where route != "0.0.0.0/0" && route != params.address {
                steps.append(Step(apply: ["ip", "route", "add", route, "dev", interface]))
            }
        }
        let socketDirectory = daemon.hasSuffix("amneziawg-go") ? "/var/run/amneziawg" : "/var/run/wireguard"
        if host.resolved, !nameservers.isEmpty {
            // Applications that ask systemd-resolved (nss-resolve, D-Bus) rather than read
            // resolv.conf: every domain ("~.") goes to this link's servers. Gone with the link.
            steps += [
                Step(apply: ["resolvectl", "dns", interface] + nameservers),
                Step(apply: ["resolvectl", "domain", interface, "~."]),
                Step(apply: ["resolvectl", "default-route", interface, "yes"]),
            ]
        }
        // Rotation moves only between addresses: with the default route, the pinned ones.
        var rotation = EndpointRotation(params)
        if let current = rotation {
            let reachable = Set([connect.endpointHost] + (fullTunnel ? Array(host.rotationRoutes.keys) : current.hosts))
            rotation = current.restricted(to: reachable.filter { isIPv4($0) || (host.ipv6 && isIPv6($0)) || $0 == connect.endpointHost })
        }
        return TunnelPlan(interface: interface, daemon: daemon, socketPath: "\(socketDirectory)/\(interface).sock",
                          configuration: configuration, steps: steps, nameservers: nameservers, takesAllTraffic: fullTunnel,
                          rotation: rotation, ipv6: ipv6)
    }

    /// The UAPI transaction that moves the tunnel's peer to `endpoint` (`host:port`) and
    /// changes nothing else (`update_only`: no key, PSK or AllowedIPs is sent, so the session,
    /// its keys and its routes stay as they are).
    public func moving(to endpoint: String) -> UAPI.Set {
        UAPI.Set(peers: configuration.peers.map { UAPI.Peer(publicKeyHex: $0.publicKeyHex, endpoint: endpoint, updateOnly: true) })
    }

    /// What connect tells the user about routes and DNS, e.g. "all IPv4 traffic routed
    /// through the tunnel, IPv6 blocked, DNS 1.1.1.1".
    public var summary: String {
        var parts: [String] = []
        if takesAllTraffic {
            parts.append(ipv6 == .carried ? "all traffic routed through the tunnel" : "all IPv4 traffic routed through the tunnel")
        }
        if ipv6 == .blocked { parts.append("IPv6 blocked") }
        if !nameservers.isEmpty { parts.append("DNS \(nameservers.joined(separator: ", "))") }
        return parts.joined(separator: ", ")
    }

    /// IPv6's two halves: more specific than any IPv6 default route, as the IPv4 halves are.
    static let ipv6Halves = ["::/1", "8000::/1"]

    /// IPv4 only: IPv6 routes are not installed yet (`::/0` stays in AllowedIPs).
    static func ipv4Routes(_ connect: ConnectPlan) -> [String] { connect.routes.filter { !$0.contains(":") } }

    static func takesDefaultRoute(_ connect: ConnectPlan, _ defaultRoute: Bool) -> Bool {
        defaultRoute && ipv4Routes(connect).contains("0.0.0.0/0")
    }

    /// `ip route` arguments that keep the endpoint on its present path; nil when it is reached
    /// over the loopback (a node on this host) or the path is unknown.
    static func pin(_ host: String, to route: EndpointRoute?) -> [String]? {
        guard let route, route.device != "lo" else { return nil }
        let network = "\(host)/\(host.contains(":") ? 128 : 32)"
        if let gateway = route.gateway { return [network, "via", gateway, "dev", route.device] }
        return [network, "dev", route.device]
    }

    /// What Linux takes as a device name: at most 15 bytes, no '/', no whitespace; narrower here.
    static func isInterfaceName(_ name: String) -> Bool {
        (1...15).contains(name.utf8.count)
            && name.unicodeScalars.allSatisfy { c in
                ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || "-_.".unicodeScalars.contains(c)
            }
            && name != "." && name != ".."
    }

    static func isIPv4(_ host: String) -> Bool { HostPort(host: host, port: 0).isIPv4Literal }

    static func isIPv6(_ host: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET6, host, &address) == 1
    }
}
