import Foundation
import NIOCore
import NIOEmbedded
import NIOPosix
import NIOSSL
import NIOTLS
import PharosSpec
import PharosTestSupport
import Testing
import X509
@testable import PharosTLS

/// Who may call a node or a relay's tunnel: the controller's leaf, and none of the other
/// leaves the same Fleet CA issues.
@Suite struct ControllerRequirementsTests {
    @Test func onlyTheControllerLeafMeetsTheControllerRequirements() async throws {
        let pki = try TestPKI()
        let verifier = PeerVerifier(roots: try pki.roots(), requirements: .controller(fleetCA: [pki.fleet]))
        let controllerName = PharosIdentity.CommonName.controller
        let controller = try pki.controllerLeaf()
        guard case .success = await verifier.verify([controller.certificate, pki.fleet]) else {
            Issue.record("the controller's own leaf was refused")
            return
        }
        let others: [(String, TestPKI.Leaf, String)] = [
            ("relay", try pki.leaf(commonName: "PharosVPN Relay", organization: "PharosVPN Relay", usage: [.serverAuth, .clientAuth]), "O="),
            ("relay O with the controller's CN", try pki.leaf(commonName: controllerName, organization: "PharosVPN Relay", usage: [.clientAuth]), "O="),
            ("node with ClientAuth", try pki.leaf(commonName: "node-1", usage: [.serverAuth, .clientAuth]), "CN="),
            ("device CA", try pki.leaf(commonName: controllerName, usage: [.clientAuth], issuer: .device), "accepted CA"),
            ("server-only", try pki.leaf(commonName: controllerName, usage: [.serverAuth]), "extended key usage"),
        ]
        for (name, leaf, reason) in others {
            let issuer = name == "device CA" ? pki.device : pki.fleet
            switch await verifier.verify([leaf.certificate, issuer]) {
            case .success: Issue.record("\(name) was accepted as the controller")
            case .failure(let rejection): #expect(rejection.description.contains(reason), "\(name): \(rejection)")
            }
        }
    }
}

@Suite struct ConnectionBudgetTests {
    @Test func admitsUpToEachLimitAndReturnsSlots() {
        let budget = ConnectionBudget(limits: ListenerLimits(maxConnections: 3, maxConnectionsPerAddress: 2))
        #expect(budget.admit("192.0.2.1") == nil)
        #expect(budget.admit("192.0.2.1") == nil)
        #expect(budget.admit("192.0.2.1") == .addressFull(address: "192.0.2.1", limit: 2))
        #expect(budget.admit("192.0.2.2") == nil)
        #expect(budget.admit("192.0.2.3") == .listenerFull(limit: 3))
        #expect(budget.openConnections == 3)
        budget.release("192.0.2.1")
        #expect(budget.admit("192.0.2.3") == nil, "a released slot is free again")
        budget.release("192.0.2.3")
        budget.release("192.0.2.2")
        budget.release("192.0.2.1")
        #expect(budget.openConnections == 0)
        #expect(budget.admit("192.0.2.1") == nil && budget.admit("192.0.2.1") == nil, "per-address counts return to zero")
    }

    /// One IPv6 host holds a whole /64: its addresses share one budget, and an IPv4-mapped
    /// address shares its IPv4 address's.
    @Test func anIPv6SlashSixtyFourIsOneSource() {
        let budget = ConnectionBudget(limits: ListenerLimits(maxConnections: 100, maxConnectionsPerAddress: 2))
        #expect(budget.admit("2001:db8:1:2::1") == nil)
        #expect(budget.admit("2001:db8:1:2:ffff:0:0:9") == nil)
        #expect(budget.admit("2001:db8:1:2:dead:beef:0:1") == .addressFull(address: "2001:db8:1:2::/64", limit: 2))
        #expect(budget.admit("2001:db8:1:3::1") == nil, "the next /64 is another source")
        budget.release("2001:db8:1:2::1")
        #expect(budget.admit("2001:db8:1:2::77") == nil, "released under the same /64")
        #expect(budget.admit("::ffff:192.0.2.9") == nil && budget.admit("192.0.2.9") == nil)
        #expect(budget.admit("192.0.2.9") == .addressFull(address: "192.0.2.9", limit: 2))
        #expect(SourceBucket.of("not an address") == "not an address")
    }
}

/// The listener on real sockets: slots per address, the handshake deadline.
@Suite struct VerifiedTLSListenerTests {
    /// A plain TCP connection that sends nothing; returns when the server closes it, or
    /// after `wait` with false.
    static func closedByServer(port: Int, within wait: Duration) async throws -> Bool {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get()
        return try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask { try await channel.closeFuture.get(); return true }
            group.addTask { try await Task.sleep(for: wait); return false }
            let closedByServer = try await group.next()!
            // Our own close ends the other child when the timer won.
            try? await channel.close()
            group.cancelAll()
            return closedByServer
        }
    }

    func listen(limits: ListenerLimits, refusals: MutualTLSTests.Lines) async throws -> (any Channel, TestPKI) {
        let (channel, pki, _) = try await listen(budget: ConnectionBudget(limits: limits), refusals: refusals)
        return (channel, pki)
    }

    func listen(budget: ConnectionBudget, refusals: MutualTLSTests.Lines) async throws -> (any Channel, TestPKI, ConnectionBudget) {
        let pki = try TestPKI()
        let server = try pki.leaf(commonName: "node-1", usage: [.serverAuth])
        let context = try NIOSSLContext(configuration: PharosTLSConfiguration.server(identity: server.identity(), roots: pki.roots()))
        let verifier = PeerVerifier(roots: try pki.roots(), requirements: .controller(fleetCA: [pki.fleet]))
        let channel = try await VerifiedTLSListener.bind(host: "127.0.0.1", port: 0, context: context, verifier: verifier, budget: budget,
                                                         onRefusal: { refusals.append("\($0)") }) { _ in }
        return (channel, pki, budget)
    }

    @Test func aConnectionThatNeverHandshakesIsClosedAtTheDeadline() async throws {
        let (listener, _) = try await listen(limits: ListenerLimits(handshakeTimeout: .milliseconds(300)), refusals: MutualTLSTests.Lines())
        defer { listener.close(promise: nil) }
        #expect(try await Self.closedByServer(port: listener.localAddress!.port!, within: .seconds(5)))
    }

    @Test func oneAddressCannotTakeMoreThanItsSlots() async throws {
        let refusals = MutualTLSTests.Lines()
        let (listener, _, budget) = try await listen(
            budget: ConnectionBudget(limits: ListenerLimits(handshakeTimeout: .seconds(30), maxConnectionsPerAddress: 2)), refusals: refusals)
        defer { listener.close(promise: nil) }
        let port = listener.localAddress!.port!
        let held = try await (0..<2).asyncMap { _ in
            try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get()
        }
        // Admission runs on each connection's event loop: wait until both hold their slots.
        for _ in 0..<500 where budget.openConnections < 2 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(budget.openConnections == 2)
        #expect(try await Self.closedByServer(port: port, within: .seconds(5)), "the third connection from one address must be closed")
        #expect(refusals.all.contains { $0.contains("127.0.0.1 already holds its 2 connections") }, "\(refusals.all)")
        for channel in held { try await channel.close() }
        // Slots come back when connections close.
        for _ in 0..<500 where budget.openConnections > 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(budget.openConnections == 0)
        #expect(try await !Self.closedByServer(port: port, within: .milliseconds(500)), "a slot freed by a close must be usable again")
    }
}

/// The front door's buffer before the splice is bounded: a peer that floods it is closed.
@Suite struct SpliceBufferTests {
    @Test func floodingBeforeTheSpliceClosesTheConnection() throws {
        let channel = EmbeddedChannel(handler: SpliceAfterHandshake(upstreamSocketPath: "/nonexistent/never-dialed.sock"))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        var chunk = channel.allocator.buffer(capacity: 64 << 10)
        chunk.writeRepeatingByte(0x41, count: 64 << 10)
        for _ in 0..<(SpliceAfterHandshake.maxPendingBytes / chunk.readableBytes) {
            try channel.writeInbound(chunk)
        }
        #expect(channel.isActive, "up to the bound is held")
        try channel.writeInbound(chunk)
        #expect(!channel.isActive, "one byte past the bound closes the connection")
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for element in self { out.append(try await transform(element)) }
        return out
    }
}
