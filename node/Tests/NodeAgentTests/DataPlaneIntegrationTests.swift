import Crypto
import PharosRuntime
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import PharosProto
import PharosSpec
import PharosWireGuard
import PharosTestSupport
import Testing
@testable import NodeAgent

/// Real parts: `node run` (the built binary) in its own network namespace driving
/// Debian's wireguard-go, a controller pushing over real mTLS gRPC, and a second
/// wireguard-go in a client namespace that handshakes through the node and pings
/// across; then the node crashes and comes back from disk with no controller.
@Suite(.serialized) struct DataPlaneIntegrationTests {
    static let missing: String? = {
        if geteuid() != 0 { return "needs root (network namespaces, TUN devices)" }
        for tool in ["wireguard-go", "wg", "ip", "ping"] where Command.locate(tool) == nil {
            return "needs \(tool) (apt-get install wireguard-go wireguard-tools iproute2 iputils-ping)"
        }
        return nil
    }()

    /// A test process that crashed cannot clean up; the next run does, so a stale
    /// veth cannot shadow this run's addresses. Only this (serialized) suite makes them.
    static func removeLeftoversOfCrashedRuns() {
        let namespaces = (try? Command.run(["ip", "netns", "list"])) ?? ""
        for line in namespaces.split(separator: "\n") {
            let name = String(line.split(separator: " ")[0])
            guard name.hasPrefix("phn-") || name.hasPrefix("phc-") else { continue }
            for pid in ((try? Command.run(["ip", "netns", "pids", name])) ?? "").split(separator: "\n") {
                if let pid = Int32(pid) { kill(pid, SIGKILL) }
            }
            _ = try? Command.run(["ip", "netns", "del", name])
        }
        let links = (try? Command.run(["ip", "-o", "link", "show"])) ?? ""
        for line in links.split(separator: "\n") {
            let fields = line.split(separator: ":")
            guard fields.count > 1 else { continue }
            let name = fields[1].trimmingCharacters(in: .whitespaces).split(separator: "@")[0]
            if name.hasPrefix("phr") { _ = try? Command.run(["ip", "link", "del", String(name)]) }
        }
    }

    static var nodeBinary: String { TestBinaries.path("node", package: "node") }

    @Test(.enabled(if: missing == nil, "skipped: \(missing ?? "")"))
    func clientPingsThroughTheNodeAndAgainAfterTheNodeCrashes() async throws {
        Self.removeLeftoversOfCrashedRuns()
        let s = String(UUID().uuidString.prefix(4)).lowercased()
        let nsNode = "phn-\(s)", nsClient = "phc-\(s)"
        let ifNode = "phwn\(s)", ifClient = "phwc\(s)"
        let dir = try Support.temporaryDirectory()
        var processes: [Process] = []
        defer {
            for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) }
            _ = try? Command.run(["pkill", "-KILL", "-f", "wireguard-go phw[nc]\(s)"])
            _ = try? Command.run(["ip", "netns", "del", nsNode])
            _ = try? Command.run(["ip", "netns", "del", nsClient])
            _ = try? Command.run(["ip", "link", "del", "phr\(s)"])
            for iface in [ifNode, ifClient] { try? FileManager.default.removeItem(atPath: "/var/run/wireguard/\(iface).sock") }
            try? FileManager.default.removeItem(atPath: dir)
        }

        // Topology: root ⟷ node (control, 198.51.100.0/30); node ⟷ client (data plane, 192.0.2.0/30).
        for command in [
            ["ip", "netns", "add", nsNode], ["ip", "netns", "add", nsClient],
            ["ip", "link", "add", "phr\(s)", "type", "veth", "peer", "name", "phrn\(s)", "netns", nsNode],
            ["ip", "address", "add", "198.51.100.1/30", "dev", "phr\(s)"], ["ip", "link", "set", "phr\(s)", "up"],
            ["ip", "-n", nsNode, "address", "add", "198.51.100.2/30", "dev", "phrn\(s)"], ["ip", "-n", nsNode, "link", "set", "phrn\(s)", "up"],
            ["ip", "-n", nsNode, "link", "add", "phd\(s)", "type", "veth", "peer", "name", "phdc\(s)", "netns", nsClient],
            ["ip", "-n", nsNode, "address", "add", "192.0.2.1/30", "dev", "phd\(s)"], ["ip", "-n", nsNode, "link", "set", "phd\(s)", "up"],
            ["ip", "-n", nsClient, "address", "add", "192.0.2.2/30", "dev", "phdc\(s)"], ["ip", "-n", nsClient, "link", "set", "phdc\(s)", "up"],
            ["ip", "-n", nsNode, "link", "set", "lo", "up"], ["ip", "-n", nsClient, "link", "set", "lo", "up"],
        ] { try Command.run(command) }

        // The node's config dir, as `cox nodes enroll` and the operator would leave it.
        let pki = try TestPKI()
        try pki.leaf(commonName: "node-a", usage: [.serverAuth], ipAddresses: [[198, 51, 100, 2]]).write(to: dir, name: "node")
        try pki.rootPEM.write(toFile: "\(dir)/ca.crt", atomically: true, encoding: .utf8)
        try """
            control:
              listen_addr: 198.51.100.2:8444
            dataplane:
              backend: wireguard-go
              interface: \(ifNode)
              listen_port: 51820
              address: 10.99.0.1/24
              poll_seconds: 1
            """.write(toFile: "\(dir)/node.yaml", atomically: true, encoding: .utf8)

        func startNode() throws -> Process {
            let p = try NodeLab.startNode(in: nsNode, configDir: dir)
            processes.append(p)
            return p
        }
        let controllerLeaf = try pki.controllerLeaf()
        func control<T: Sendable>(_ body: (Pharos_Node_V1_NodeControl.Client<HTTP2ClientTransport.Posix>) async throws -> T) async throws -> T {
            try await NodeLab.control(pki: pki, leaf: controllerLeaf, address: "198.51.100.2", body)
        }

        var node = try startNode()
        let nodeStatus = try await control { try await $0.getStatus(Pharos_Node_V1_GetStatusRequest()) }
        #expect(nodeStatus.services.first?.running == true)
        #expect(nodeStatus.services.first?.detail.contains("obfuscation set not applied") == true)

        // The client: its own wireguard-go in its own namespace.
        let clientKey = Support.key()
        let clientPublic = try Command.run(["wg", "pubkey"], input: clientKey + "\n").trimmingCharacters(in: .whitespacesAndNewlines)
        processes.append(try await NodeLab.startClientWireGuard(in: nsClient, interface: ifClient))
        try clientKey.write(toFile: "\(dir)/client.key", atomically: true, encoding: .utf8)
        try Command.run(["wg", "set", ifClient, "private-key", "\(dir)/client.key", "peer", nodeStatus.amneziawg.publicKey,
                         "endpoint", "192.0.2.1:51820", "allowed-ips", "10.99.0.1/32", "persistent-keepalive", "1"])
        try Command.run(["ip", "-n", nsClient, "address", "add", "10.99.0.2/32", "dev", ifClient])
        try Command.run(["ip", "-n", nsClient, "link", "set", ifClient, "up"])
        try Command.run(["ip", "-n", nsClient, "route", "add", "10.99.0.1/32", "dev", ifClient])

        // The controller watches events while it pushes the client as a peer.
        let events = Task {
            try await control { client in
                try await client.watchEvents(Pharos_Node_V1_WatchEventsRequest()) { response in
                    for try await event in response.messages where event.type == .peerConnected { return event }
                    return Pharos_Node_V1_Event()
                }
            }
        }
        try await Task.sleep(for: .milliseconds(500))
        // The controller pushes the client as a peer.
        let applied = try await control {
            try await $0.pushConfig(Wire.push(1, [Wire.peer("dev-1", key: clientPublic, ip: "10.99.0.2/32")]))
        }
        #expect(applied.appliedRevision == 1)
        #expect(try Command.run(["wg", "show", ifNode, "peers"]).contains(clientPublic), "wg does not see the pushed peer")
        // The client's first initiation reached the node before the push; WireGuard retries every 5 s.
        func pingsWithin(seconds: Int) -> Bool {
            for _ in 0..<seconds {
                if (try? Command.run(["ip", "netns", "exec", nsClient, "ping", "-c", "1", "-W", "1", "10.99.0.1"])) != nil { return true }
            }
            return false
        }
        if !pingsWithin(seconds: 15) {
            for command in [["wg", "show", ifNode], ["wg", "show", ifClient], ["ip", "-n", nsNode, "address"], ["ip", "-n", nsNode, "route"],
                            ["ip", "-n", nsClient, "address"], ["ip", "-n", nsClient, "route"]] {
                print("$ \(command.joined(separator: " "))\n" + ((try? Command.run(command)) ?? "failed"))
            }
            Issue.record("no ping across the tunnel within 15 s")
            return
        }
        let connected = try await withThrowingTaskGroup(of: Pharos_Node_V1_Event?.self) { group in
            group.addTask { try await events.value }
            group.addTask { try await Task.sleep(for: .seconds(10)); return nil }
            defer { group.cancelAll(); events.cancel() }
            return try await group.next()!
        }
        #expect(connected?.peerID == "dev-1", "no PEER_CONNECTED event from WatchEvents")
        #expect(connected?.sourceEndpoint.hasPrefix("192.0.2.2:") == true)

        // Network policy, applied inside the node's namespace and removed exactly.
        try Command.run(["ip", "-n", nsNode, "route", "add", "default", "via", "198.51.100.1"])
        func inNode(_ argv: [String]) throws -> String { try Command.run(["ip", "netns", "exec", nsNode] + argv) }
        let forwardingBefore = try inNode(["cat", "/proc/sys/net/ipv4/conf/all/forwarding"])
        func policy(_ forwarding: Bool, _ masquerade: Bool, _ isolation: Bool) async throws -> Bool {
            var request = Pharos_Node_V1_SetNetworkConfigRequest()
            (request.config.forwarding, request.config.masquerade, request.config.isolation) = (forwarding, masquerade, isolation)
            return try await control { try await $0.setNetworkConfig(request).applied }
        }
        #expect(try await policy(true, true, true))
        #expect(try inNode(["cat", "/proc/sys/net/ipv4/conf/all/forwarding"]).hasPrefix("1"))
        #expect(try inNode(["iptables", "-S", "FORWARD"]).contains("-A FORWARD -i \(ifNode) -o \(ifNode) -j DROP"))
        #expect(try inNode(["iptables", "-t", "nat", "-S", "POSTROUTING"]).contains("-A POSTROUTING -o phrn\(s) -j MASQUERADE"))
        #expect(try await policy(false, false, false))
        #expect(try !inNode(["iptables", "-S", "FORWARD"]).contains(ifNode), "the old policy's rules were not removed")
        #expect(try !inNode(["iptables", "-t", "nat", "-S"]).contains("MASQUERADE"))
        #expect(try inNode(["cat", "/proc/sys/net/ipv4/conf/all/forwarding"]) == forwardingBefore)
        let refused = await #expect(throws: RPCError.self) { _ = try await policy(false, true, false) }
        #expect(refused?.code == .invalidArgument)
        #expect(try await policy(true, true, false))

        // Crash: the agent and its daemon die; the tunnel is gone.
        kill(node.processIdentifier, SIGKILL)
        node.waitUntilExit()
        _ = try? Command.run(["pkill", "-KILL", "-f", "wireguard-go \(ifNode)"])
        for _ in 0..<40 where (try? Command.run(["ip", "-n", nsNode, "link", "show", ifNode])) != nil {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(throws: CommandError.self, "the tunnel should be down while the node is dead") {
            try Command.run(["ip", "netns", "exec", nsClient, "ping", "-c", "1", "-W", "1", "10.99.0.1"])
        }

        // Restart with no controller: peers come back from disk.
        node = try startNode()
        #expect(pingsWithin(seconds: 20), "the restarted node did not restore its peer from disk")
        let masquerades = try inNode(["iptables", "-t", "nat", "-S", "POSTROUTING"]).components(separatedBy: "MASQUERADE").count - 1
        #expect(masquerades == 1, "a restart must re-apply the policy without duplicating its rules")
        #expect(try Command.run(["wg", "show", ifNode, "peers"]).contains(clientPublic))
        node.terminate()
        node.waitUntilExit()
    }

    /// wireguard-go's socket directory is the host's, shared by every network namespace: a
    /// second node on the host must not take over a daemon serving the same name elsewhere
    /// (it would set its own key on that node's interface). Refused, the other daemon untouched.
    @Test(.enabled(if: missing == nil, "skipped: \(missing ?? "")"))
    func aDaemonOfAnotherNamespaceIsNotTakenOver() async throws {
        let suffix = String(UInt32.random(in: 0..<0xFFFF), radix: 16)
        let ns = "phn-adopt-\(suffix)", interface = "awgt\(suffix)"
        let socket = "/var/run/wireguard/\(interface).sock"
        _ = try Command.run(["ip", "netns", "add", ns])
        defer {
            // Deleting the interface ends its daemon (a daemon would keep the namespace alive).
            _ = try? Command.run(["ip", "-n", ns, "link", "del", "dev", interface])
            _ = try? Command.run(["ip", "netns", "del", ns])
            try? FileManager.default.removeItem(atPath: socket)
        }
        _ = try Command.run(["ip", "netns", "exec", ns, "wireguard-go", interface])  // forks into the background
        let deadline = ContinuousClock.now + .seconds(5)
        while !FileManager.default.fileExists(atPath: socket), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(FileManager.default.fileExists(atPath: socket), "wireguard-go did not open \(socket)")

        var config = NodeConfig()
        config.backend = .wireguardGo
        config.interfaceName = interface
        config.listenPort = 0
        let plane = UserspaceWireGuard(config: config, logger: Support.logger)
        do {
            try await plane.start(identity: .generate(), peers: [])
            Issue.record("a daemon serving \(interface) in another namespace was taken over")
        } catch {
            #expect("\(error)".contains("not in this network namespace"), "\(error)")
        }
        let key = try Command.run(["ip", "netns", "exec", ns, "wg", "show", interface, "private-key"])
        #expect(key.trimmingCharacters(in: .whitespacesAndNewlines) == "(none)", "the other namespace's interface got a key: \(key)")
    }

    /// A push re-applies the whole peer set: a peer it keeps must keep its session (a full
    /// `replace_peers` recreates every peer, and each client then goes unanswered until its
    /// rekey timer fires, about 15 s). A real wireguard-go client handshakes over loopback;
    /// the push keeps its handshake and counters, adds a peer, and a later one removes it.
    @Test(.enabled(if: missing == nil, "skipped: \(missing ?? "")"))
    func aPushKeepsTheSessionsOfThePeersItKeeps() async throws {
        let suffix = String(UInt32.random(in: 0..<0xFFFF), radix: 16)
        let server = "awgs\(suffix)", client = "awgk\(suffix)"
        let port = Int.random(in: 40000..<50000)
        var config = NodeConfig()
        config.backend = .wireguardGo
        config.interfaceName = server
        config.listenPort = port
        let plane = UserspaceWireGuard(config: config, logger: Support.logger)
        let identity = AmneziaWGIdentity.generate()
        let clientKey = Curve25519.KeyAgreement.PrivateKey()
        let keyFile = try Support.temporaryDirectory() + "/client.key"
        defer {
            _ = try? Command.run(["ip", "link", "del", "dev", client])
            try? FileManager.default.removeItem(atPath: (keyFile as NSString).deletingLastPathComponent)
        }
        let clientPeer = PeerSpec(id: "client", publicKey: Base64.standard(Array(clientKey.publicKey.rawRepresentation)),
                                  presharedKey: Support.key(), allowedIPs: ["10.99.\(port % 200).2/32"])
        try await plane.start(identity: identity, peers: [clientPeer])
        do {
            _ = FileManager.default.createFile(atPath: keyFile, contents: Data(Base64.standard(Array(clientKey.rawRepresentation)).utf8),
                                           attributes: [.posixPermissions: 0o600])
            let psk = keyFile + ".psk"
            _ = FileManager.default.createFile(atPath: psk, contents: Data(clientPeer.presharedKey.utf8), attributes: [.posixPermissions: 0o600])
            _ = try Command.run(["wireguard-go", client])
            _ = try Command.run(["wg", "set", client, "private-key", keyFile, "peer", identity.publicKey, "preshared-key", psk,
                                 "endpoint", "127.0.0.1:\(port)", "allowed-ips", "10.99.\(port % 200).1/32", "persistent-keepalive", "1"])
            _ = try Command.run(["ip", "link", "set", "dev", client, "up"])

            func clientStatus() async throws -> UAPI.PeerStatus? {
                let hex = WireGuardKey.hex(fromBase64: clientPeer.publicKey)
                return try await plane.status().peers.first { $0.publicKeyHex == hex }
            }
            let deadline = ContinuousClock.now + .seconds(10)
            while try await clientStatus()?.lastHandshakeSeconds ?? 0 == 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            let first = try await clientStatus()
            let before = try #require(first)
            #expect(before.lastHandshakeSeconds > 0, "the client never handshook with the node")

            let other = PeerSpec(id: "other", publicKey: Support.key(), allowedIPs: ["10.99.\(port % 200).3/32"])
            try await plane.replacePeers([clientPeer, other], previous: [clientPeer])
            let status = try await clientStatus()
            let after = try #require(status)
            #expect(after.lastHandshakeSeconds == before.lastHandshakeSeconds && after.rxBytes >= before.rxBytes && after.rxBytes > 0,
                    "the kept peer lost its session: \(before) → \(after)")
            #expect(try await plane.status().peers.count == 2)

            try await plane.replacePeers([other], previous: [clientPeer, other])
            let left = try await plane.status().peers.map(\.publicKeyHex)
            #expect(left == [WireGuardKey.hex(fromBase64: other.publicKey)], "\(left)")
        } catch {
            await plane.destroy()
            throw error
        }
        await plane.destroy()
    }
}
