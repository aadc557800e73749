import PharosRuntime
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import PharosProto
import PharosTestSupport
import Testing
@testable import NodeAgent

/// A two-hop cascade with real parts: two `node run` processes (entry and exit) in their own
/// network namespaces, each with Debian's wireguard-go, driven over real mTLS gRPC as the
/// controller would; a client's wireguard-go in a third namespace; a target host reachable
/// only from the exit. The client's ping reaches the target only through the entry's inner
/// link to the exit and the exit's masquerade; the entry survives a crash with the link and
/// its transit route restored from disk; RemoveInnerLink takes the path down.
@Suite(.serialized) struct CascadeIntegrationTests {
    @Test(.enabled(if: DataPlaneIntegrationTests.missing == nil, "skipped: \(DataPlaneIntegrationTests.missing ?? "")"))
    func aClientReachesTheTargetOnlyThroughTheEntrysInnerLinkToTheExit() async throws {
        let s = String(UUID().uuidString.prefix(4)).lowercased()
        let (nsEntry, nsExit, nsClient, nsTarget) = ("pxe-\(s)", "pxx-\(s)", "pxc-\(s)", "pxt-\(s)")
        let (ifEntry, ifInner, ifExit, ifClient) = ("pxwe\(s)", "pxwi\(s)", "pxwx\(s)", "pxwc\(s)")
        let dirEntry = try Support.temporaryDirectory(), dirExit = try Support.temporaryDirectory()
        var processes: [Process] = []
        defer {
            for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) }
            _ = try? Command.run(["pkill", "-KILL", "-f", "wireguard-go pxw[eixc]\(s)"])
            for ns in [nsEntry, nsExit, nsClient, nsTarget] { _ = try? Command.run(["ip", "netns", "del", ns]) }
            for link in ["pxa\(s)", "pxb\(s)"] { _ = try? Command.run(["ip", "link", "del", link]) }
            for iface in [ifEntry, ifInner, ifExit, ifClient] { try? FileManager.default.removeItem(atPath: "/var/run/wireguard/\(iface).sock") }
            for dir in [dirEntry, dirExit] { try? FileManager.default.removeItem(atPath: dir) }
        }

        // root ⟷ entry, root ⟷ exit: control (198.51.100.8/30, .12/30). client ⟷ entry (192.0.2.8/30).
        // entry ⟷ exit: the public side the inner link crosses (203.0.113.0/30).
        // exit ⟷ target (198.18.0.0/30): the exit's default route. Nothing else connects them.
        func veth(_ a: String, in nsA: String?, _ addressA: String, _ b: String, in nsB: String, _ addressB: String) throws {
            if let nsA {
                try Command.run(["ip", "-n", nsA, "link", "add", a, "type", "veth", "peer", "name", b, "netns", nsB])
                try Command.run(["ip", "-n", nsA, "address", "add", addressA, "dev", a])
                try Command.run(["ip", "-n", nsA, "link", "set", a, "up"])
            } else {
                try Command.run(["ip", "link", "add", a, "type", "veth", "peer", "name", b, "netns", nsB])
                try Command.run(["ip", "address", "add", addressA, "dev", a])
                try Command.run(["ip", "link", "set", a, "up"])
            }
            try Command.run(["ip", "-n", nsB, "address", "add", addressB, "dev", b])
            try Command.run(["ip", "-n", nsB, "link", "set", b, "up"])
        }
        for ns in [nsEntry, nsExit, nsClient, nsTarget] {
            try Command.run(["ip", "netns", "add", ns])
            try Command.run(["ip", "-n", ns, "link", "set", "lo", "up"])
        }
        try veth("pxa\(s)", in: nil, "198.51.100.9/30", "pxan\(s)", in: nsEntry, "198.51.100.10/30")
        try veth("pxb\(s)", in: nil, "198.51.100.13/30", "pxbn\(s)", in: nsExit, "198.51.100.14/30")
        try veth("pxd\(s)", in: nsEntry, "192.0.2.9/30", "pxdc\(s)", in: nsClient, "192.0.2.10/30")
        try veth("pxl\(s)", in: nsEntry, "203.0.113.1/30", "pxlx\(s)", in: nsExit, "203.0.113.2/30")
        try veth("pxo\(s)", in: nsExit, "198.18.0.1/30", "pxot\(s)", in: nsTarget, "198.18.0.2/30")
        try Command.run(["ip", "-n", nsExit, "route", "add", "default", "via", "198.18.0.2"])

        let pki = try TestPKI()
        for (dir, name, ip, iface, address) in [(dirEntry, "entry", [UInt8]([198, 51, 100, 10]), ifEntry, "10.97.0.1/24"),
                                                (dirExit, "exit", [198, 51, 100, 14], ifExit, "10.98.0.1/24")] {
            try pki.leaf(commonName: name, usage: [.serverAuth], ipAddresses: [ip]).write(to: dir, name: "node")
            try pki.rootPEM.write(toFile: "\(dir)/ca.crt", atomically: true, encoding: .utf8)
            try """
                control:
                  listen_addr: \(ip.map(String.init).joined(separator: ".")):8444
                dataplane:
                  backend: wireguard-go
                  interface: \(iface)
                  listen_port: 51820
                  address: \(address)
                  poll_seconds: 1
                """.write(toFile: "\(dir)/node.yaml", atomically: true, encoding: .utf8)
        }
        func start(_ ns: String, _ dir: String) throws -> Process {
            let p = try NodeLab.startNode(in: ns, configDir: dir)
            processes.append(p)
            return p
        }
        let leaf = try pki.controllerLeaf()
        func control<T: Sendable>(_ address: String, _ body: (Pharos_Node_V1_NodeControl.Client<HTTP2ClientTransport.Posix>) async throws -> T) async throws -> T {
            try await NodeLab.control(pki: pki, leaf: leaf, address: address, body)
        }
        let (entryAddress, exitAddress) = ("198.51.100.10", "198.51.100.14")
        var entry = try start(nsEntry, dirEntry)
        _ = try start(nsExit, dirExit)
        let entryKey = try await control(entryAddress) { try await $0.getStatus(Pharos_Node_V1_GetStatusRequest()) }.amneziawg.publicKey
        let exitKey = try await control(exitAddress) { try await $0.getStatus(Pharos_Node_V1_GetStatusRequest()) }.amneziawg.publicKey

        // The exit: the entry is an ordinary peer whose AllowedIPs hold the device; its
        // traffic leaves masqueraded through the default route.
        _ = try await control(exitAddress) { try await $0.pushConfig(Wire.push(1, [Wire.peer("entry-link", key: entryKey, ip: "10.97.0.2/32")])) }
        var exitPolicy = Pharos_Node_V1_SetNetworkConfigRequest()
        (exitPolicy.config.forwarding, exitPolicy.config.masquerade) = (true, true)
        #expect(try await control(exitAddress) { try await $0.setNetworkConfig(exitPolicy).applied })

        // The entry: the client as a peer, the inner link to the exit, the device's transit route.
        let clientKey = Support.key()
        let clientPublic = try Command.run(["wg", "pubkey"], input: clientKey + "\n").trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try await control(entryAddress) { try await $0.pushConfig(Wire.push(1, [Wire.peer("dev-1", key: clientPublic, ip: "10.97.0.2/32")])) }
        var link = Pharos_Node_V1_ConfigureInnerLinkRequest()
        link.revision = 1
        link.config.interface = ifInner
        link.config.listenPort = 51821
        link.config.exit = Wire.peer("exit", key: exitKey, ip: "0.0.0.0/0")
        link.config.exit.endpoints = ["203.0.113.2:51820"]
        let configured = try await control(entryAddress) { try await $0.configureInnerLink(link) }
        #expect(configured.appliedRevision == 1 && configured.reloaded)
        #expect(try Command.run(["wg", "show", ifInner, "endpoints"]).contains("203.0.113.2:51820"))
        var transit = Pharos_Node_V1_TransitRoute()
        (transit.deviceCidr, transit.innerInterface, transit.mark, transit.table) = ("10.97.0.2/32", ifInner, 0x1a, 1001)
        var entryPolicy = Pharos_Node_V1_SetNetworkConfigRequest()
        entryPolicy.config.forwarding = true
        entryPolicy.config.transits = [transit]
        #expect(try await control(entryAddress) { try await $0.setNetworkConfig(entryPolicy).applied })
        #expect(throws: CommandError.self, "the entry itself must have no way to the target but the inner link") {
            try Command.run(["ip", "-n", nsEntry, "route", "get", "198.18.0.2"])
        }

        // The client: its own wireguard-go, the entry as its only peer.
        processes.append(try await NodeLab.startClientWireGuard(in: nsClient, interface: ifClient))
        try clientKey.write(toFile: "\(dirEntry)/client.key", atomically: true, encoding: .utf8)
        try Command.run(["wg", "set", ifClient, "private-key", "\(dirEntry)/client.key", "peer", entryKey,
                         "endpoint", "192.0.2.9:51820", "allowed-ips", "10.97.0.1/32,198.18.0.0/30", "persistent-keepalive", "1"])
        try Command.run(["ip", "-n", nsClient, "address", "add", "10.97.0.2/32", "dev", ifClient])
        try Command.run(["ip", "-n", nsClient, "link", "set", ifClient, "up"])
        try Command.run(["ip", "-n", nsClient, "route", "add", "198.18.0.0/30", "dev", ifClient])

        func reachesTarget(within seconds: Int) -> Bool {
            for _ in 0..<seconds {
                if (try? Command.run(["ip", "netns", "exec", nsClient, "ping", "-c", "1", "-W", "1", "198.18.0.2"])) != nil { return true }
            }
            return false
        }
        func dump() {
            for command in [["wg", "show", ifEntry], ["wg", "show", ifInner], ["wg", "show", ifExit], ["ip", "-n", nsEntry, "rule"],
                            ["ip", "-n", nsEntry, "route", "show", "table", "1001"], ["ip", "netns", "exec", nsEntry, "iptables", "-t", "mangle", "-S"],
                            ["ip", "netns", "exec", nsExit, "iptables", "-t", "nat", "-S"]] {
                print("$ \(command.joined(separator: " "))\n" + ((try? Command.run(command)) ?? "failed"))
            }
        }
        guard reachesTarget(within: 20) else {
            dump()
            Issue.record("the client's ping did not reach the target through entry → exit within 20 s")
            return
        }
        // The target saw the exit, not the entry or the client: it has no route to either.
        #expect(try Command.run(["wg", "show", ifExit, "latest-handshakes"]).contains(entryKey))

        // The entry crashes with its daemons; restarted without a controller, it restores the
        // inner link and the transit route from disk.
        kill(entry.processIdentifier, SIGKILL)
        entry.waitUntilExit()
        _ = try? Command.run(["pkill", "-KILL", "-f", "wireguard-go pxw[ei]\(s)"])
        for _ in 0..<40 where (try? Command.run(["ip", "-n", nsEntry, "link", "show", ifInner])) != nil {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(!reachesTarget(within: 1), "the path should be down while the entry is dead")
        entry = try start(nsEntry, dirEntry)
        if !reachesTarget(within: 25) {
            dump()
            Issue.record("the restarted entry did not restore its inner link and transit route from disk")
        }
        let rules = try Command.run(["ip", "-n", nsEntry, "rule"]).components(separatedBy: "lookup 1001").count - 1
        #expect(rules == 1, "a restart must re-apply the transit route without duplicating its rule")

        // The entry gets a default route of its own (out to the root side), and a counter of
        // the device's packets leaving by it: once the link is gone, its traffic must be dropped
        // (the transit table's unreachable route), not fall through to the main table.
        try Command.run(["ip", "-n", nsEntry, "route", "add", "default", "via", "198.51.100.9"])
        try Command.run(["ip", "netns", "exec", nsEntry, "iptables", "-I", "FORWARD", "-s", "10.97.0.2", "-o", "pxan\(s)", "-j", "DROP"])
        // RemoveInnerLink: the interface goes, and with it the path.
        let removed = try await control(entryAddress) { client in
            var request = Pharos_Node_V1_RemoveInnerLinkRequest()
            request.interface = ifInner
            return try await client.removeInnerLink(request).removed
        }
        #expect(removed)
        for _ in 0..<40 where (try? Command.run(["ip", "-n", nsEntry, "link", "show", ifInner])) != nil {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(throws: CommandError.self, "the inner interface outlived RemoveInnerLink") {
            try Command.run(["ip", "-n", nsEntry, "link", "show", ifInner])
        }
        #expect(!reachesTarget(within: 2))
        let leaked = try Command.run(["ip", "netns", "exec", nsEntry, "iptables", "-nvx", "-L", "FORWARD"])
            .split(separator: "\n").first { $0.contains("10.97.0.2") }?.split(separator: " ", omittingEmptySubsequences: true).first
        #expect(leaked == "0", "the device's traffic left the entry by its own default route: \(leaked ?? "no counter")")
        entry.terminate()
        entry.waitUntilExit()
    }
}
