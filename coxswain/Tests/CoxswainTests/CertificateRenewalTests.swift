import Crypto
import Foundation
import GRPCCore
import PharosTestSupport
import PharosTLS
import Testing
import X509
@testable import Coxswain

/// Issue #20 with real `node` processes over real mTLS: the controller renews node leaves at
/// two thirds of their life, refuses a removed or revoked node leaf, and makes nodes refuse a
/// revoked controller leaf. What a port presents is read by the real `openssl s_client`.
/// Part of FleetIntegrationTests, whose tests run one at a time (they share interface names
/// and clean up each other's leftovers).
extension FleetIntegrationTests {
    static let renewalDay: TimeInterval = 86400

    /// The serial `node` presents to a new connection made with the controller's current leaf.
    static func presentedSerial(_ node: NodeProcess, state: TestState) throws -> String {
        let pki = try FleetPKI.loadOrCreate(in: state.store)
        return try OpenSSLProbe.presentedSerial(port: node.port, clientChainPEM: pki.controllerCertificatePEM,
                                                clientKeyPEM: pki.controllerKeyPEM, rootPEM: try pki.authority.root.certificate.pemString())
    }

    static func current(_ node: NodeProcess, _ state: TestState) async throws -> NodeCertificateState {
        try #require(try await state.store.read { tx in try tx.nodeCertificates(node: node.record.id).first })
    }

    @Test func aNodeLeafIsRenewedAtTwoThirdsOfItsLifeAndTheNodeKeepsWorking() async throws {
        try await Self.withFleet { fleet in
            let (state, n1, n2) = (fleet.state, fleet.nodes[0], fleet.nodes[1])
            let renewer = NodeCertificateRenewer(store: state.store, pool: fleet.pool, authority: state.pki.authority,
                                                 logger: FleetIntegrationTests.logger)
            let enrolled = try await Self.current(n1, state)
            #expect(enrolled.notAfter.timeIntervalSince(enrolled.notBefore) >= 30 * Self.renewalDay, "a node leaf lives 30 days")
            #expect(enrolled.renewAt.timeIntervalSince(enrolled.notBefore) >= 20 * Self.renewalDay - 600)
            for (_, outcome) in await renewer.pass() {
                guard case .notDue = outcome else { Issue.record("a fresh leaf was renewed: \(outcome)"); continue }
            }

            // n1's leaf, as the store knows it, is 21 days into its 30 (a controller that was
            // off for three weeks): the next pass renews it, and only it.
            let aged = try state.pki.authority.issue(publicKey: Certificate.PublicKey(P256.Signing.PrivateKey().publicKey),
                                                     profile: .node(id: n1.record.id, addresses: ["127.0.0.1"]),
                                                     validity: 30 * Self.renewalDay, now: Date() - 21 * Self.renewalDay)
            try await state.store.write { tx in
                try tx.insertNodeCertificate(nodeID: n1.record.id, serial: aged.serialHex, certificatePEM: try aged.pemString(),
                                             notAfter: FleetPKI.micros(aged.notValidAfter))
            }
            let outcomes = await renewer.pass()
            guard case .renewed(let serial, let notAfter) = outcomes[n1.record.id] else {
                Issue.record("n1 was not renewed: \(outcomes)")
                return
            }
            if case .notDue = outcomes[n2.record.id] {} else { Issue.record("n2: \(String(describing: outcomes[n2.record.id]))") }
            #expect(notAfter.timeIntervalSinceNow > 29 * Self.renewalDay)
            #expect(try Self.presentedSerial(n1, state: state) == serial, "the node's port presents the renewed leaf")
            #expect(try Self.presentedSerial(n2, state: state) == n2.enrolledSerial)
            let stored = try await Self.current(n1, state)
            #expect(stored.serial == serial && stored.renewal == "renewed")
            let audit = try await state.store.read { tx in try tx.auditRows(AuditQuery()).filter { $0.action == "node.cert.renew" } }
            #expect(audit.count == 1 && audit[0].detail.contains(aged.serialHex))
            let inventory = try await state.store.read { tx in try tx.certificateInventory() }.filter { $0.kind == .node }
            #expect(inventory.map(\.serial).sorted() == [serial, n2.enrolledSerial].sorted(), "one current leaf per node")

            // The node still takes config over the connection it had and over a new one.
            let added = try await state.service.addDevice(user: "alice@example.com", name: "laptop", by: state.actor)
            let pushed = await fleet.reconciler.push(added.affectedNodes)
            #expect(pushed.values.allSatisfy { if case .applied = $0 { true } else { false } }, "\(pushed)")
            await fleet.pool.drop(n1.record.id)
            #expect(try await fleet.peers(on: n1).count == 1)

            // A restarted node presents the renewed leaf, not the one it was enrolled with.
            n1.kill()
            try await n1.start()
            #expect(try Self.presentedSerial(n1, state: state) == serial)
        }
    }

    @Test func aRemovedOrRevokedNodeLeafIsRefusedWhereverItIsPresented() async throws {
        try await Self.withFleet { fleet in
            let (state, n1, n2) = (fleet.state, fleet.nodes[0], fleet.nodes[1])
            // n1 is removed but its machine keeps running; a new node is enrolled at its address.
            _ = try await state.service.removeNode(n1.record.id, by: state.actor)
            let revoked = try await state.store.read { tx in try tx.revokedCertificates(kind: .node) }
            #expect(revoked.map(\.serial) == [n1.enrolledSerial] && revoked[0].reason == "node removed")
            let inventory = try await state.store.read { tx in try tx.certificateInventory() }
            #expect(inventory.first { $0.serial == n1.enrolledSerial }?.revoked == true, "pki status lists the removed node's leaf as revoked")

            let csr = try NodeCSRFixture.csr(for: P256.Signing.PrivateKey())
            let successor = try await state.service.enrollNode(csrPEM: csr, controlAddress: n1.record.controlAddr, name: "n1-successor",
                                                               region: "test", by: state.actor)
            try await fleet.controllerWithDeniedNodes { pool in
                await #expect(throws: (any Error).self, "the removed node's leaf passed for its successor") {
                    _ = try await pool.client(for: successor.node.id, address: successor.node.controlAddr).getStatus(.init(), options: .short)
                }
            }

            // A leaked n2 leaf: its serial revoked, n2 answers no more, though CN and address match.
            _ = try await fleet.controllerWithDeniedNodes { pool in
                try await pool.client(for: n2.record.id, address: n2.record.controlAddr).getStatus(.init(), options: .short)
            }
            try await state.store.write { tx in
                try tx.insertRevoked(RevokedCertificate(serial: n2.enrolledSerial, kind: .node, name: "n2", notBefore: 0,
                                                        notAfter: tx.now + 86_400_000_000, revokedAt: tx.now, reason: "leaked"))
            }
            try await fleet.controllerWithDeniedNodes { pool in
                await #expect(throws: (any Error).self, "a revoked node leaf was accepted") {
                    _ = try await pool.client(for: n2.record.id, address: n2.record.controlAddr).getStatus(.init(), options: .short)
                }
            }
        }
    }

    @Test func aRevokedControllerLeafIsRefusedByEveryNode() async throws {
        try await Self.withFleet { fleet in
            let state = fleet.state
            let leaked = try FleetPKI.loadOrCreate(in: state.store)
            // The leaked leaf was renewed since (a cox command five days later): revoking must
            // still catch it, not only the current one.
            let since = try FleetPKI.loadOrCreate(in: state.store, now: Date() + 5 * Self.renewalDay)
            let (leakedSerial, sinceSerial) = (NodeClientPool.serial(of: leaked.controllerCertificatePEM),
                                               NodeClientPool.serial(of: since.controllerCertificatePEM))
            #expect(leakedSerial != sinceSerial)
            let serials = try FleetPKI.revokeControllerLeaf(in: state.store, reason: "test", by: state.actor)
            #expect(serials.revoked == [leakedSerial, sinceSerial].sorted() && !serials.revoked.contains(serials.current))
            #expect(Set(try await state.store.read { tx in try tx.revokedCertificates(kind: .controller).map(\.serial) })
                    == [leakedSerial, sinceSerial])
            let current = try FleetPKI.loadOrCreate(in: state.store)
            #expect(NodeClientPool.serial(of: current.controllerCertificatePEM) == serials.current)

            // cox serve's pass: the new leaf to the pool, then the deny list to every node.
            await Controller.renewControllerLeaf(state.store, pool: fleet.pool, logger: FleetIntegrationTests.logger)
            #expect(await fleet.pool.identitySerial == serials.current)
            let renewer = NodeCertificateRenewer(store: state.store, pool: fleet.pool, authority: state.pki.authority,
                                                 logger: FleetIntegrationTests.logger)
            await renewer.pass()

            for node in fleet.nodes {
                let withLeaked = try NodeClientPool(pki: leaked)
                await #expect(throws: (any Error).self, "\(node.name) let the revoked controller leaf in") {
                    _ = try await withLeaked.client(for: node.record.id, address: node.record.controlAddr).getStatus(.init(), options: .short)
                }
                await withLeaked.shutdown()
                let withCurrent = try NodeClientPool(pki: current)
                let status = try await withCurrent.client(for: node.record.id, address: node.record.controlAddr).getStatus(.init(), options: .short)
                #expect(!status.agentVersion.isEmpty)
                await withCurrent.shutdown()
            }
        }
    }
}

extension FleetIntegrationTests.Fleet {
    /// A fresh pool (new connections) that refuses the revoked node leaves in the store.
    @discardableResult
    func controllerWithDeniedNodes<T: Sendable>(_ body: (NodeClientPool) async throws -> T) async throws -> T {
        try await Controller(config: state.config, store: state.store, pki: state.pki, service: state.service).withPool(body)
    }
}

extension NodeProcess {
    /// The serial of the leaf `cox nodes enroll` issued it.
    var enrolledSerial: String {
        let pem = (try? String(contentsOfFile: "\(dir)/node.crt", encoding: .utf8)) ?? ""
        return NodeClientPool.serial(of: pem)
    }
}

extension GRPCCore.CallOptions {
    static var short: Self {
        var options = Self.defaults
        options.timeout = .seconds(3)
        return options
    }
}
