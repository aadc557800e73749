import Crypto
import Foundation
import PharosSpec
import PharosTestSupport
import CaravelLab
import Testing

/// `caravel connect` for real, as root: a client namespace and a server namespace joined by a
/// veth pair, Debian's wireguard-go on both sides (the server side configured with `wg` by
/// the test), traffic to an address behind the server, and the client's routing table
/// compared before and after `down` and after the client is SIGKILLed.
@Suite(.serialized, .enabled(if: NetnsLab.available, "needs root and /usr/bin/wireguard-go"))
struct TunnelTests {
    static let buildDirectory = TestBinaries.directory(containing: "caravel", package: "caravel-cli")

    @Test func connectCarriesTrafficAndDownRestoresTheRoutingTableExactly() async throws {
        let lab = try NetnsLab(binaryDirectory: TunnelTests.buildDirectory)
        defer { lab.tearDown() }
        let before = try lab.settledRoutes()

        var client = try lab.connect()
        #expect(try lab.ping("10.200.0.1"), "no traffic through the tunnel to the address behind the server")
        let status = try lab.caravel(["status", "--json", "--interface", lab.interface])
        #expect(status.contains("\"connected\": true"), "\(status)")
        #expect(try lab.serverReceivedBytes() > 0, "the server's wireguard-go saw no traffic")
        #expect(try lab.routes() != before, "connect changed no route")
        _ = try lab.caravel(["down", "--interface", lab.interface])
        client.waitUntilExit()
        #expect(client.terminationStatus == 0)
        #expect(try lab.routes() == before, "down did not restore the routing table")
        #expect(!lab.interfaceExists())
        #expect(!(try lab.ping("10.200.0.1", wait: 1)))

        // A client killed outright leaves its routes; `down` cleans them up from its state file.
        client = try lab.connect()
        #expect(try lab.ping("10.200.0.1"))
        kill(client.processIdentifier, SIGKILL)
        client.waitUntilExit()
        _ = try lab.caravel(["down", "--interface", lab.interface])
        let after = try lab.routes()
        #expect(after == before, "down after SIGKILL did not restore the routing table:\n\(before)\n---\n\(after)")
        #expect(!lab.interfaceExists())
        #expect(try lab.daemonCount() == 0, "the killed client's wireguard-go is still running")
    }
}
