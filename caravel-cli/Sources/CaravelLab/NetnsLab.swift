import Crypto
import Foundation
import PharosRuntime
import PharosSpec

/// A client and a server network namespace joined by a veth pair, Debian's wireguard-go on
/// the server side (configured with `wg`), and a stored profile for it: what the tunnel test
/// and the connect benchmark run `caravel` against. The server's networks (10.200.0.1 behind
/// it) are reachable from the client only through the tunnel; its endpoint (10.78.0.2) via a
/// gateway, so the client pins a route. The client also has what leaks are made of: an IPv6
/// default route over the veth (fd78::1 behind the server) and a network resolver
/// (10.77.0.2, in the client's own /etc/netns/<ns>/resolv.conf, which `ip netns exec` mounts
/// over /etc/resolv.conf, so the host's file is never touched); the profile's resolver
/// (1.1.1.1) sits behind the server.
public final class NetnsLab: @unchecked Sendable {
    public static var available: Bool { geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/wireguard-go") }

    /// The `caravel` binary beside the running executable (tests and bench live in the same build folder).
    public let caravelBinary: String

    public let tag = String(UUID().uuidString.prefix(6)).lowercased()
    public var cli: String { "cvc\(tag)" }
    public var srv: String { "cvs\(tag)" }
    public var interface: String { "pcv\(tag)" }
    public var serverInterface: String { "wgs\(tag)" }
    public let dir: String
    private var server: Process?

    /// The server's second address (on its loopback, reached through the same gateway): with
    /// `rotation`, the profile's endpoint pool holds both.
    public static let secondEndpoint = "10.78.0.3"

    /// `binaryDirectory`: where `caravel` was built; `rotation`: the endpoint rotation policy
    /// the profile carries, its pool the server's two addresses.
    public init(binaryDirectory: String, rotation: RotationPolicy? = nil) throws {
        caravelBinary = "\(binaryDirectory)/caravel"
        dir = "/tmp/caravel-lab-\(tag)"
        try FileManager.default.createDirectory(atPath: "\(dir)/store", withIntermediateDirectories: true)
        let (c, s) = (cli, srv)
        for ns in [c, s] { try sh(["ip", "netns", "add", ns]); try sh(["ip", "-n", ns, "link", "set", "lo", "up"]) }
        try sh(["ip", "link", "add", "cv0\(tag)", "netns", c, "type", "veth", "peer", "name", "cv1\(tag)", "netns", s])
        try sh(["ip", "-n", c, "addr", "add", "10.77.0.1/24", "dev", "cv0\(tag)"])
        try sh(["ip", "-n", c, "link", "set", "cv0\(tag)", "up"])
        // The server's networks are reachable only through the tunnel; its endpoint via a gateway.
        try sh(["ip", "-n", c, "route", "add", "10.78.0.0/24", "via", "10.77.0.2"])
        try sh(["ip", "-n", s, "addr", "add", "10.77.0.2/24", "dev", "cv1\(tag)"])
        try sh(["ip", "-n", s, "link", "set", "cv1\(tag)", "up"])
        // The endpoint is off-link for the client (reached via its gateway), the target sits behind the server.
        try sh(["ip", "-n", s, "addr", "add", "10.78.0.2/32", "dev", "lo"])
        try sh(["ip", "-n", s, "addr", "add", "\(Self.secondEndpoint)/32", "dev", "lo"])
        try sh(["ip", "-n", s, "addr", "add", "10.200.0.1/32", "dev", "lo"])
        try sh(["ip", "-n", s, "addr", "add", "1.1.1.1/32", "dev", "lo"])
        // IPv6 the way a home network gives it: a global address and a default route.
        try sh(["ip", "-n", c, "-6", "addr", "add", "fd77::1/64", "dev", "cv0\(tag)", "nodad"])
        try sh(["ip", "-n", s, "-6", "addr", "add", "fd77::2/64", "dev", "cv1\(tag)", "nodad"])
        try sh(["ip", "-n", s, "-6", "addr", "add", "fd78::1/128", "dev", "lo"])
        try sh(["ip", "-n", c, "-6", "route", "add", "default", "via", "fd77::2"])
        try FileManager.default.createDirectory(atPath: "/etc/netns/\(c)", withIntermediateDirectories: true)
        try Self.networkResolvConf.write(toFile: "/etc/netns/\(c)/resolv.conf", atomically: false, encoding: .utf8)

        let serverKey = Curve25519.KeyAgreement.PrivateKey(), clientKey = Curve25519.KeyAgreement.PrivateKey()
        let psk = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        try write("server.key", serverKey.rawRepresentation.base64EncodedString())
        try write("psk", psk)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        server.arguments = ["netns", "exec", s, "wireguard-go", serverInterface]
        server.environment = ["WG_PROCESS_FOREGROUND": "1", "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1",
                              "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin"]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        self.server = server
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: "/var/run/wireguard/\(serverInterface).sock") { usleep(50_000) }
        try sh(["ip", "netns", "exec", s, "wg", "set", serverInterface, "private-key", "\(dir)/server.key", "listen-port", "51820",
                "peer", clientKey.publicKey.rawRepresentation.base64EncodedString(), "preshared-key", "\(dir)/psk",
                "allowed-ips", "10.99.0.2/32"])
        try sh(["ip", "-n", s, "addr", "add", "10.99.0.1/24", "dev", serverInterface])
        try sh(["ip", "-n", s, "link", "set", serverInterface, "up"])

        let bundle = ProfileBundle(fleetID: "flt_lab", user: "lab@example.org", revision: 1, issuedAt: "2026-11-25T00:00:00Z",
                                   expiresAt: "2027-11-25T00:00:00Z", profiles: [
            ClientProfile(id: "prs_lab", name: "lab", protocolChoice: .amneziaWG, nodes: [
                ProfileNode(id: "nod_lab", name: "lab-node", region: "lab", endpoints: ["10.78.0.2"], protocols: [
                    .amneziaWG(AmneziaWGParams(privateKey: clientKey.rawRepresentation.base64EncodedString(), address: "10.99.0.2/32",
                                               publicKey: serverKey.publicKey.rawRepresentation.base64EncodedString(), presharedKey: psk,
                                               endpoints: [EndpointPool(ip: "10.78.0.2", portMin: 51820, portMax: 51820)]
                                                   + (rotation == nil ? [] : [EndpointPool(ip: Self.secondEndpoint, portMin: 51820, portMax: 51820)]),
                                               rotation: rotation, allowedIPs: ["0.0.0.0/0", "::/0"], obfuscation: Obfuscation())),
                ]),
            ]),
        ])
        try write("lab.pharos", String(decoding: ProfileEnvelope.plain(bundle).encoded(), as: UTF8.self))
        _ = try caravel(["import", "\(dir)/lab.pharos"])
    }

    /// The client's resolv.conf before connect: the network's resolver.
    public static let networkResolvConf = "# the lab network's resolver\nnameserver 10.77.0.2\n"

    /// The client namespace's /etc/resolv.conf.
    public func resolvConf() -> String? { try? String(contentsOfFile: "/etc/netns/\(cli)/resolv.conf", encoding: .utf8) }

    public func ping6(_ address: String, wait: Int = 3) -> Bool {
        (try? sh(["ip", "netns", "exec", cli, "ping", "-6", "-c", "1", "-W", String(wait), address])) != nil
    }

    /// A name lookup the way applications make one (glibc, /etc/resolv.conf); the answer does
    /// not matter: no resolver in the lab answers.
    public func lookUp(_ name: String) {
        _ = try? sh(["ip", "netns", "exec", cli, "getent", "hosts", name])
    }

    /// Counts, with packet-counting firewall rules: what leaves the client over the veth
    /// (DNS, anything to IPv6 fd78::1), and DNS reaching 1.1.1.1 through the server's tunnel.
    public func countLeaks() throws {
        for proto in ["udp", "tcp"] {
            try sh(["ip", "netns", "exec", cli, "iptables", "-w", "-A", "OUTPUT", "-o", "cv0\(tag)", "-p", proto, "--dport", "53", "-j", "ACCEPT"])
        }
        try sh(["ip", "netns", "exec", cli, "ip6tables", "-w", "-A", "OUTPUT", "-o", "cv0\(tag)", "-d", "fd78::1", "-j", "ACCEPT"])
        try sh(["ip", "netns", "exec", srv, "iptables", "-w", "-A", "INPUT", "-i", serverInterface, "-d", "1.1.1.1", "-p", "udp",
                "--dport", "53", "-j", "ACCEPT"])
    }

    /// Counts, per server address, the WireGuard packets that reach it (`endpointPackets`).
    public func countEndpointPackets() throws {
        for address in ["10.78.0.2", Self.secondEndpoint] {
            try sh(["ip", "netns", "exec", srv, "iptables", "-w", "-A", "INPUT", "-d", address, "-p", "udp", "--dport", "51820", "-j", "ACCEPT"])
        }
    }

    /// WireGuard packets that reached `address` since `countEndpointPackets`.
    public func endpointPackets(_ address: String) throws -> Int {
        let out = try sh(["ip", "netns", "exec", srv, "iptables", "-w", "-nvx", "-L", "INPUT"])
        return out.split(separator: "\n").filter { $0.contains(" \(address) ") }
            .compactMap { $0.split(separator: " ").first.flatMap { Int($0) } }.reduce(0, +)
    }

    public func zeroCounters() throws {
        for (ns, tool) in [(cli, "iptables"), (cli, "ip6tables"), (srv, "iptables")] { try sh(["ip", "netns", "exec", ns, tool, "-w", "-Z"]) }
    }

    /// Packets counted by `countLeaks`' rules.
    public func dnsPacketsOverTheVeth() throws -> Int { try packets(cli, "iptables", "OUTPUT") }
    public func ipv6PacketsOverTheVeth() throws -> Int { try packets(cli, "ip6tables", "OUTPUT") }
    public func dnsPacketsThroughTheTunnel() throws -> Int { try packets(srv, "iptables", "INPUT") }

    private func packets(_ ns: String, _ tool: String, _ chain: String) throws -> Int {
        let out = try sh(["ip", "netns", "exec", ns, tool, "-w", "-nvx", "-L", chain])
        return out.split(separator: "\n").dropFirst(2).compactMap { $0.split(separator: " ").first.flatMap { Int($0) } }.reduce(0, +)
    }

    public var environment: [String: String] {
        ["CARAVEL_HOME": "\(dir)/store", "CARAVEL_RUN_DIR": "\(dir)/run", "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin"]
    }

    /// What the last `connect` printed (stdout and stderr).
    public var connectOutput: String { (try? String(contentsOfFile: "\(dir)/connect.log", encoding: .utf8)) ?? "" }

    /// `caravel connect lab` in the client namespace, in the background, once it says connected;
    /// `extraEnvironment` is added to the lab's (systemd's NOTIFY_SOCKET, WATCHDOG_USEC).
    public func connect(extraEnvironment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = ["netns", "exec", cli, caravelBinary, "connect", "lab", "--interface", interface, "--engine-binary", "wireguard-go"]
        process.environment = environment.merging(extraEnvironment) { _, extra in extra }
        let out = "\(dir)/connect.log"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = process.standardOutput
        try process.run()
        for _ in 0..<2000 {
            if (try? String(contentsOfFile: out, encoding: .utf8))?.contains("connected:") == true { return process }
            if !process.isRunning { break }
            usleep(5_000)
        }
        throw NSError(domain: "lab", code: 1, userInfo: [NSLocalizedDescriptionKey: "caravel connect did not connect: \((try? String(contentsOfFile: out, encoding: .utf8)) ?? "")"])
    }

    @discardableResult
    public func caravel(_ arguments: [String]) throws -> String {
        try sh(["ip", "netns", "exec", cli, caravelBinary] + arguments, environment: environment)
    }

    public func ping(_ address: String, wait: Int = 3) throws -> Bool {
        (try? sh(["ip", "netns", "exec", cli, "ping", "-c", "1", "-W", String(wait), address])) != nil
    }

    /// Every route of the client namespace, IPv4 and IPv6, all tables.
    public func routes() throws -> String {
        let v4 = try sh(["ip", "-n", cli, "-4", "route", "show", "table", "all"])
        return v4 + (try sh(["ip", "-n", cli, "-6", "route", "show", "table", "all"]))
    }

    /// The routes once the veth's IPv6 link-local address has left duplicate detection (the
    /// kernel adds its local route a moment after the link comes up).
    public func settledRoutes() throws -> String {
        for _ in 0..<60 {
            let routes = try routes()
            if routes.contains("local fe80::") { return routes }
            usleep(100_000)
        }
        return try routes()
    }

    public func interfaceExists() -> Bool { (try? sh(["ip", "-n", cli, "link", "show", interface])) != nil }

    public func serverReceivedBytes() throws -> Int {
        let out = try sh(["ip", "netns", "exec", srv, "wg", "show", serverInterface, "transfer"])
        return out.split(separator: "\t").dropFirst().first.flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
    }

    public func daemonCount() throws -> Int { daemonPIDs().count }

    /// The client's wireguard-go processes.
    public func daemonPIDs() -> [Int32] {
        let out = (try? sh(["pgrep", "-f", "wireguard-go \(interface)"])) ?? ""
        return out.split(separator: "\n").compactMap { Int32($0.trimmingCharacters(in: .whitespaces)) }
    }

    public func tearDown() {
        server?.terminate()
        server?.waitUntilExit()
        _ = try? sh(["pkill", "-f", "wireguard-go \(interface)"])
        _ = try? sh(["pkill", "-f", "wireguard-go \(serverInterface)"])
        for ns in [cli, srv] { _ = try? sh(["ip", "netns", "del", ns]) }
        try? FileManager.default.removeItem(atPath: "/etc/netns/\(cli)")
        try? FileManager.default.removeItem(atPath: dir)
    }

    private func write(_ name: String, _ text: String) throws {
        try text.write(toFile: "\(dir)/\(name)", atomically: true, encoding: .utf8)
        chmod("\(dir)/\(name)", 0o600)
    }

    /// Runs a command (stdout and stderr together); `environment` is added with `env`.
    @discardableResult
    public func sh(_ argv: [String], environment: [String: String] = [:]) throws -> String {
        try Command.run(environment.isEmpty ? argv : ["env"] + environment.keys.sorted().map { "\($0)=\(environment[$0]!)" } + argv)
    }
}
