import Crypto
import Foundation
import PharosSpec
import PharosWireGuard
import Testing
@testable import CaravelCore

/// The routing rules of `caravel connect`, without root or sockets: what `up` runs and what
/// `down` undoes, for the shapes of host and profile the client meets.
@Suite struct TunnelPlanTests {
    static let clientKey = Curve25519.KeyAgreement.PrivateKey()
    static let serverKey = Curve25519.KeyAgreement.PrivateKey()
    static let psk = Data(repeating: 7, count: 32).base64EncodedString()

    static func connect(host: String = "10.78.0.2", port: Int = 51820, routes: [String] = ["0.0.0.0/0", "::/0"],
                        address: String = "10.99.0.2/32", obfuscation: Obfuscation = Obfuscation(),
                        privateKey: String = clientKey.rawRepresentation.base64EncodedString(),
                        presharedKey: String = psk) -> ConnectPlan {
        let params = AmneziaWGParams(privateKey: privateKey, address: address,
                                     publicKey: serverKey.publicKey.rawRepresentation.base64EncodedString(), presharedKey: presharedKey,
                                     endpoints: [EndpointPool(ip: host, portMin: port, portMax: port)], allowedIPs: routes,
                                     obfuscation: obfuscation)
        return ConnectPlan(entry: "lab", profileID: "prs_lab", profileName: "lab", nodeName: "lab-node", engine: .amneziaWG,
                           mtu: 1420, routes: routes, endpointHost: host, endpointPort: port, wireGuard: params, xray: nil)
    }

    static let viaGateway = EndpointRoute(device: "eth0", gateway: "10.77.0.2")

    static func make(_ connect: ConnectPlan, defaultRoute: Bool = true, daemon: String = "/usr/bin/wireguard-go",
                     route: EndpointRoute? = viaGateway, ipv6: Bool = false, resolved: Bool = false,
                     dns: TunnelPlan.DNS = .profile) throws -> TunnelPlan {
        try TunnelPlan.make(connect, interface: "pharos0", defaultRoute: defaultRoute, daemon: daemon,
                            host: TunnelPlan.Host(endpointRoute: route, ipv6: ipv6, resolved: resolved), dns: dns)
    }

    @Test func theDefaultRoutePinsTheEndpointViaItsGatewayThenTakesBothHalvesOfTheAddressSpace() throws {
        let connect = Self.connect()
        #expect(TunnelPlan.endpointToObserve(for: connect, defaultRoute: true, ipv6: false) == "10.78.0.2")
        let plan = try Self.make(connect)
        #expect(plan.steps.map(\.apply) == [
            ["ip", "address", "add", "10.99.0.2/32", "dev", "pharos0"],
            ["ip", "link", "set", "dev", "pharos0", "mtu", "1420", "up"],
            ["ip", "route", "add", "10.78.0.2/32", "via", "10.77.0.2", "dev", "eth0"],
            ["ip", "route", "add", "0.0.0.0/1", "dev", "pharos0"],
            ["ip", "route", "add", "128.0.0.0/1", "dev", "pharos0"],
        ])
        #expect(plan.teardown == [["ip", "route", "del", "10.78.0.2/32", "via", "10.77.0.2", "dev", "eth0"]])
        #expect(plan.daemon == "/usr/bin/wireguard-go" && plan.socketPath == "/var/run/wireguard/pharos0.sock")
    }

    /// #25: a profile that rotates its endpoint pins every address of the pool before the
    /// tunnel takes the routes, rotates only between pinned ones, and moves with a UAPI
    /// transaction that touches nothing but the peer's endpoint.
    @Test func aRotatingProfilePinsEveryAddressOfThePoolAndMovesOnlyTheEndpoint() throws {
        var connect = Self.connect()
        connect.wireGuard?.endpoints = ["10.78.0.2", "10.78.0.3", "10.78.0.4", "2001:db8::7"].map {
            EndpointPool(ip: $0, portMin: 51820, portMax: 51820)
        }
        connect.wireGuard?.rotation = RotationPolicy(enabled: true, intervalSeconds: 600, jitterSeconds: 120)
        #expect(TunnelPlan.rotationHostsToObserve(for: connect, defaultRoute: true, ipv6: false) == ["10.78.0.3", "10.78.0.4"])
        #expect(TunnelPlan.rotationHostsToObserve(for: connect, defaultRoute: false, ipv6: false) == [])
        // 10.78.0.4's path could not be observed: it is pinned nowhere and never moved to.
        let plan = try TunnelPlan.make(connect, interface: "pharos0", defaultRoute: true, daemon: "/usr/bin/wireguard-go",
                                       host: TunnelPlan.Host(endpointRoute: Self.viaGateway, ipv6: false,
                                                             rotationRoutes: ["10.78.0.3": Self.viaGateway]))
        #expect(plan.teardown == [["ip", "route", "del", "10.78.0.3/32", "via", "10.77.0.2", "dev", "eth0"],
                                  ["ip", "route", "del", "10.78.0.2/32", "via", "10.77.0.2", "dev", "eth0"]])
        let rotation = try #require(plan.rotation)
        #expect(rotation.hosts == ["10.78.0.2", "10.78.0.3"] && rotation.intervalSeconds == 600 && rotation.jitterSeconds == 120)

        let peer = try #require(WireGuardKey.hex(fromBase64: Self.serverKey.publicKey.rawRepresentation.base64EncodedString()))
        #expect(plan.moving(to: "10.78.0.3:51820").render() == "set=1\npublic_key=\(peer)\nupdate_only=true\nendpoint=10.78.0.3:51820\n\n",
                "only the endpoint: no key, PSK, AllowedIPs or replace_peers")

        // Without rotation in the profile nothing changes.
        #expect(try Self.make(Self.connect()).rotation == nil)
    }

    @Test func withoutTheDefaultRouteOnlyTheProfilesOwnIPv4NetworksGoIntoTheTunnel() throws {
        let connect = Self.connect(routes: ["0.0.0.0/0", "::/0", "10.200.0.0/24", "fd00::/64", "10.99.0.2/32", "192.168.7.0/24"])
        #expect(TunnelPlan.endpointToObserve(for: connect, defaultRoute: false, ipv6: false) == nil, "no pin, so nothing to look up")
        let plan = try Self.make(connect, defaultRoute: false, route: nil)
        #expect(plan.steps.map(\.apply) == [
            ["ip", "address", "add", "10.99.0.2/32", "dev", "pharos0"],
            ["ip", "link", "set", "dev", "pharos0", "mtu", "1420", "up"],
            ["ip", "route", "add", "10.200.0.0/24", "dev", "pharos0"],
            ["ip", "route", "add", "192.168.7.0/24", "dev", "pharos0"],
        ])
        #expect(plan.teardown.isEmpty, "everything goes with the link")
        #expect(plan.configuration.peers[0].allowedIPs == connect.routes, "AllowedIPs keep every route, IPv6 included")
    }

    @Test func aProfileWithoutTheDefaultRouteIsNotWidenedByTheOption() throws {
        let connect = Self.connect(routes: ["10.200.0.0/24"])
        #expect(TunnelPlan.endpointToObserve(for: connect, defaultRoute: true, ipv6: false) == nil)
        let plan = try Self.make(connect, defaultRoute: true, route: nil)
        #expect(plan.steps.map(\.apply).last == ["ip", "route", "add", "10.200.0.0/24", "dev", "pharos0"])
        #expect(plan.teardown.isEmpty)
    }

    /// How the endpoint is reached today decides the pin: via its gateway, on-link through
    /// its device, not at all over the loopback or when the host named no device.
    @Test(arguments: [
        (EndpointRoute(device: "eth0", gateway: "10.77.0.2") as EndpointRoute?, ["10.78.0.2/32", "via", "10.77.0.2", "dev", "eth0"] as [String]?),
        (EndpointRoute(device: "veth1"), ["10.78.0.2/32", "dev", "veth1"]),
        (EndpointRoute(device: "lo"), nil),
        (nil, nil),
    ])
    func theEndpointIsPinnedToThePathItTakesNow(route: EndpointRoute?, pin: [String]?) throws {
        let plan = try Self.make(Self.connect(), route: route)
        let added = plan.steps.map(\.apply).filter { $0.starts(with: ["ip", "route", "add", "10.78.0.2/32"]) }
        #expect(added == (pin.map { [["ip", "route", "add"] + $0] } ?? []))
        #expect(plan.teardown == (pin.map { [["ip", "route", "del"] + $0] } ?? []))
    }

    @Test(arguments: [
        ("10.78.0.2 via 10.77.0.2 dev cv0ab12 src 10.77.0.1 uid 0 \n    cache \n", EndpointRoute(device: "cv0ab12", gateway: "10.77.0.2")),
        ("10.77.0.2 dev eth0 src 10.77.0.1 uid 0 \n    cache \n", EndpointRoute(device: "eth0")),
        ("local 127.0.0.1 dev lo table local src 127.0.0.1 uid 0 \n    cache <local> \n", EndpointRoute(device: "lo")),
        ("", nil),
        ("10.78.0.2 via 10.77.0.2", nil),
    ] as [(String, EndpointRoute?)])
    func ipRouteGetAnswersAreRead(output: String, route: EndpointRoute?) {
        #expect(EndpointRoute(ipRouteGet: output) == route)
    }

    @Test func onAHostWithoutIPv6AnIPv6EndpointIsNeitherLookedUpNorPinned() throws {
        let connect = Self.connect(host: "2001:db8::7")
        #expect(TunnelPlan.endpointToObserve(for: connect, defaultRoute: true, ipv6: false) == nil)
        let plan = try Self.make(connect, route: nil)
        #expect(plan.configuration.peers[0].endpoint == "[2001:db8::7]:51820")
        #expect(plan.steps.map(\.apply).suffix(2) == [["ip", "route", "add", "0.0.0.0/1", "dev", "pharos0"],
                                                     ["ip", "route", "add", "128.0.0.0/1", "dev", "pharos0"]])
        #expect(plan.teardown.isEmpty)
    }

    @Test func aHostnameEndpointIsRefusedBeforeAnythingIsLookedUp() {
        let connect = Self.connect(host: "node-a.example.org")
        #expect(TunnelPlan.endpointToObserve(for: connect, defaultRoute: true, ipv6: false) == nil)
        #expect(throws: TunnelPlanError.endpointNotAnAddress(node: "lab-node", host: "node-a.example.org")) {
            _ = try Self.make(connect, route: nil)
        }
    }

    /// Every step either lives on the tunnel interface (its removal takes it along) or has a
    /// teardown that is the same `ip` command with `del` for `add`; the teardown runs last first.
    @Test(arguments: [true, false])
    func teardownUndoesExactlyWhatUpChangedOutsideTheInterface(defaultRoute: Bool) throws {
        let plan = try Self.make(Self.connect(routes: ["0.0.0.0/0", "10.200.0.0/24"]), defaultRoute: defaultRoute)
        for step in plan.steps {
            if let undo = step.teardown {
                #expect(step.apply.prefix(3) == ["ip", "route", "add"] && undo == ["ip", "route", "del"] + step.apply.dropFirst(3))
                #expect(!step.apply.suffix(2).elementsEqual(["dev", "pharos0"]), "a route through the tunnel goes with the link")
            } else {
                #expect(step.apply.suffix(2).elementsEqual(["dev", "pharos0"]) || step.apply.contains("pharos0"), "\(step.apply)")
            }
        }
        #expect(plan.teardown == plan.steps.compactMap(\.teardown).reversed())
    }

    @Test func theDeviceIsConfiguredInOneTransactionWithKeysEndpointAndKeepalive() throws {
        let plan = try Self.make(Self.connect())
        let lines = plan.configuration.render().split(separator: "\n").map(String.init)
        #expect(lines.prefix(3) == ["set=1", "private_key=\(Base64.hex(Array(Self.clientKey.rawRepresentation)))", "replace_peers=true"])
        #expect(lines.contains("public_key=\(Base64.hex(Array(Self.serverKey.publicKey.rawRepresentation)))"))
        #expect(lines.contains("preshared_key=\(String(repeating: "07", count: 32))"))
        #expect(lines.contains("endpoint=10.78.0.2:51820") && lines.contains("persistent_keepalive_interval=25"))
        #expect(lines.suffix(2) == ["allowed_ip=0.0.0.0/0", "allowed_ip=::/0"])
        let noPSK = try Self.make(Self.connect(presharedKey: ""))
        #expect(noPSK.configuration.peers[0].presharedKeyHex == nil)
    }

    @Test func obfuscationNeedsAmneziaWGGoAndGoesIntoTheDeviceLines() throws {
        let obfuscated = Self.connect(obfuscation: Obfuscation(jc: 4, jmin: 40, jmax: 70, s1: 15, s2: 20, h1: 1, h2: 2, h3: 3, h4: 4))
        #expect(throws: TunnelPlanError.obfuscationUnsupported(node: "lab-node", daemon: "/usr/bin/wireguard-go")) {
            _ = try Self.make(obfuscated)
        }
        let plan = try Self.make(obfuscated, daemon: "/usr/local/bin/amneziawg-go")
        #expect(plan.socketPath == "/var/run/amneziawg/pharos0.sock")
        #expect(plan.configuration.deviceLines.prefix(3) == ["jc=4", "jmin=40", "jmax=70"])
        #expect(try Self.make(Self.connect()).configuration.deviceLines.isEmpty)
    }

    @Test func plansThatCannotBecomeATunnelSaySo() throws {
        #expect(throws: TunnelPlanError.malformedKeys) { _ = try Self.make(Self.connect(privateKey: "not a key")) }
        #expect(throws: TunnelPlanError.malformedKeys) { _ = try Self.make(Self.connect(presharedKey: "c2hvcnQ=")) }
        var xray = Self.connect()
        xray.engine = .xrayReality
        xray.wireGuard = nil
        #expect(TunnelPlan.endpointToObserve(for: xray, defaultRoute: true, ipv6: false) == nil)
        #expect(throws: TunnelPlanError.notAmneziaWG) { _ = try Self.make(xray) }
        #expect("\(TunnelPlanError.malformedKeys)" == "the profile's WireGuard keys are malformed; sync again")
    }

    /// Issue #19 item 7: a hostile or damaged profile cannot add UAPI keys (a newline in a
    /// value) or smuggle arguments into `ip`; it is refused before anything is configured.
    @Test func hostileProfileFieldsAreRefusedBeforeAnythingIsConfigured() throws {
        let injected = "0.0.0.0/0\nprivate_key=\(String(repeating: "00", count: 32))"
        #expect(throws: TunnelPlanError.notANetwork(field: "allowed_ips", value: injected)) {
            _ = try Self.make(Self.connect(routes: ["::/0", injected]))
        }
        #expect(throws: TunnelPlanError.notANetwork(field: "allowed_ips", value: "10.0.0.0/8 dev eth0")) {
            _ = try Self.make(Self.connect(routes: ["10.0.0.0/8 dev eth0"]))
        }
        #expect(throws: TunnelPlanError.notANetwork(field: "address", value: "10.99.0.2/32\nlisten_port=1")) {
            _ = try Self.make(Self.connect(address: "10.99.0.2/32\nlisten_port=1"))
        }
        #expect(throws: TunnelPlanError.notANetwork(field: "address", value: "-force")) {
            _ = try Self.make(Self.connect(address: "-force"))
        }
        var obfuscation = Obfuscation.generate()
        obfuscation.i2 = "<b 0x01>\nreplace_peers=true"
        #expect(throws: TunnelPlanError.unsafeObfuscation(node: "lab-node", key: "i2")) {
            _ = try Self.make(Self.connect(obfuscation: obfuscation), daemon: "/usr/bin/amneziawg-go")
        }
        #expect(throws: TunnelPlanError.endpointNotAnAddress(node: "lab-node", host: "10.78.0.2\nendpoint=6.6.6.6:1")) {
            _ = try Self.make(Self.connect(host: "10.78.0.2\nendpoint=6.6.6.6:1"))
        }
        #expect(throws: TunnelPlanError.portOutOfRange(node: "lab-node", port: 70000)) { _ = try Self.make(Self.connect(port: 70000)) }
        var tiny = Self.connect()
        tiny.mtu = 100
        #expect(throws: TunnelPlanError.mtuOutOfRange(100)) { _ = try Self.make(tiny) }
        #expect(throws: TunnelPlanError.badInterfaceName("eth0 up")) {
            _ = try TunnelPlan.make(Self.connect(), interface: "eth0 up", defaultRoute: true, daemon: "/usr/bin/wireguard-go", host: TunnelPlan.Host(ipv6: false))
        }
        // A clean obfuscated profile still passes.
        var clean = Obfuscation.generate()
        clean.i1 = "<b 0xf6ab3267fa><c><t>"
        #expect(throws: Never.self) { _ = try Self.make(Self.connect(obfuscation: clean), daemon: "/usr/bin/amneziawg-go") }
    }

    // MARK: IPv6 and DNS must not go around the tunnel (#19 item 8)

    @Test func onAnIPv6HostIPv6IsBlockedWhileTheTunnelHasNoIPv6AddressAndUnblockedOnDown() throws {
        let plan = try Self.make(Self.connect(), ipv6: true)
        #expect(plan.steps.map(\.apply).suffix(2) == [["ip", "-6", "route", "add", "unreachable", "::/1"],
                                                     ["ip", "-6", "route", "add", "unreachable", "8000::/1"]])
        #expect(plan.teardown == [["ip", "-6", "route", "del", "unreachable", "8000::/1"],
                                  ["ip", "-6", "route", "del", "unreachable", "::/1"],
                                  ["ip", "route", "del", "10.78.0.2/32", "via", "10.77.0.2", "dev", "eth0"]])
        #expect(plan.summary == "all IPv4 traffic routed through the tunnel, IPv6 blocked, DNS 1.1.1.1")
    }

    @Test func aTunnelWithAnIPv6AddressCarriesIPv6() throws {
        let plan = try Self.make(Self.connect(address: "fd86::2/128"), ipv6: true)
        #expect(plan.steps.map(\.apply).suffix(2) == [["ip", "-6", "route", "add", "::/1", "dev", "pharos0"],
                                                     ["ip", "-6", "route", "add", "8000::/1", "dev", "pharos0"]])
        #expect(plan.teardown == [["ip", "route", "del", "10.78.0.2/32", "via", "10.77.0.2", "dev", "eth0"]], "gone with the link")
        #expect(plan.summary == "all traffic routed through the tunnel, DNS 1.1.1.1")
        // Without ::/0 in the profile's routes, IPv6 is blocked rather than sent to a peer that drops it.
        let noIPv6Route = try Self.make(Self.connect(routes: ["0.0.0.0/0"], address: "fd86::2/128"), ipv6: true)
        #expect(noIPv6Route.steps.last?.apply == ["ip", "-6", "route", "add", "unreachable", "8000::/1"])
    }

    @Test func onAnIPv6HostAnIPv6EndpointIsLookedUpAndPinned() throws {
        let connect = Self.connect(host: "2001:db8::7")
        #expect(TunnelPlan.endpointToObserve(for: connect, defaultRoute: true, ipv6: true) == "2001:db8::7")
        let plan = try Self.make(connect, route: EndpointRoute(device: "eth0", gateway: "fe80::1"), ipv6: true)
        #expect(plan.steps.map(\.apply).contains(["ip", "route", "add", "2001:db8::7/128", "via", "fe80::1", "dev", "eth0"]))
        #expect(plan.teardown.last == ["ip", "route", "del", "2001:db8::7/128", "via", "fe80::1", "dev", "eth0"])
    }

    @Test func aSplitTunnelLeavesIPv6AndDNSAloneUnlessDNSIsAskedFor() throws {
        let split = try Self.make(Self.connect(routes: ["10.200.0.0/24"]), route: nil, ipv6: true)
        #expect(!split.steps.contains { $0.apply.contains("-6") })
        #expect(split.nameservers.isEmpty && split.summary == "")
        let asked = try Self.make(Self.connect(routes: ["10.200.0.0/24"]), route: nil, ipv6: true, dns: .servers(["10.200.0.53", "fd86::53"]))
        #expect(asked.nameservers == ["10.200.0.53", "fd86::53"])
        #expect(try Self.make(Self.connect(), dns: .system).nameservers.isEmpty)
        #expect(try Self.make(Self.connect()).nameservers == ConnectPlan.defaultDNS)
    }

    @Test(arguments: ["1.1.1.1\nnameserver 6.6.6.6", "dns.example", "1.1.1.1 ", "10.0.0.0/8", ""])
    func aDNSServerThatIsNotAnAddressIsRefused(_ server: String) {
        #expect(throws: TunnelPlanError.notAnAddress(field: "DNS server", value: server)) {
            _ = try Self.make(Self.connect(), dns: .servers([server]))
        }
    }

    @Test func underSystemdResolvedTheLinkTakesEveryDomain() throws {
        let plan = try Self.make(Self.connect(), resolved: true)
        #expect(plan.steps.map(\.apply).suffix(3) == [["resolvectl", "dns", "pharos0", "1.1.1.1"],
                                                     ["resolvectl", "domain", "pharos0", "~."],
                                                     ["resolvectl", "default-route", "pharos0", "yes"]])
        #expect(!(try Self.make(Self.connect(), resolved: true, dns: .system)).steps.contains { $0.apply.first == "resolvectl" })
    }
}
