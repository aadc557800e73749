import Crypto
import Foundation
import PharosSpec
@testable import Coxswain

/// A controller's state in a fresh temporary directory: real SQLite file, real CA.
final class TestState: @unchecked Sendable {
    let dir: String
    let store: Store
    let pki: FleetPKI
    let config: CoxConfig
    let service: FleetService
    let actor = AuditActor(name: "tester", kind: .cli, sourceIP: "local")

    init(config: CoxConfig = CoxConfig(), engine: SQLEngine = TestState.engine) throws {
        dir = "/tmp/cox-test-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        store = try Self.openStore(stateDirectory: "\(dir)/state", engine: engine)
        pki = try FleetPKI.loadOrCreate(in: store)
        self.config = config
        service = FleetService(store: store, pki: pki, config: config)
    }

    deinit {
        if store.backend == .postgres { try? store.close() }
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// The engine the controller tests run on: SQLite, or PostgreSQL when
    /// `PHAROS_TEST_STORE=postgres` (`make test-postgres` runs the whole suite that way).
    static var engine: SQLEngine {
        ProcessInfo.processInfo.environment["PHAROS_TEST_STORE"] == "postgres" ? .postgres : .sqlite
    }

    /// A fresh store: `<state>/app.db`, or a new database of the test process's PostgreSQL cluster.
    static func openStore(stateDirectory: String, engine: SQLEngine = TestState.engine) throws -> Store {
        switch engine {
        case .sqlite:
            return try Store.open(path: "\(stateDirectory)/app.db")
        case .postgres:
            let cluster = try PostgresCluster.shared()
            return try Store.open(postgres: cluster.configuration(database: try cluster.createDatabase()), stateDirectory: stateDirectory)
        }
    }

    /// A node row as if enrolled and polled: keys known, so devices can be placed on it.
    func readyNode(name: String, address: String = "127.0.0.1:1", xray: Bool = false) async throws -> NodeRecord {
        let key = P256.Signing.PrivateKey()
        let csr = try NodeCSRFixture.csr(for: key)
        let enrolled = try await service.enrollNode(csrPEM: csr, controlAddress: address, name: name, region: "test", by: actor)
        let wgKey = Curve25519.KeyAgreement.PrivateKey().publicKey.rawRepresentation.base64EncodedString()
        try await store.write { tx in
            try tx.recordStatus(node: enrolled.node.id, agentVersion: "fixture", wgPublicKey: wgKey, wgObfuscation: "{}",
                                xrayPublicKey: xray ? "realitykey" : "", appliedRevision: 0)
        }
        return try await store.read { tx in try tx.node(enrolled.node.id) }
    }

    /// One node, one user with a spec on it, and one device: its peer on that node (the
    /// session and analytics tests' fixture).
    func deviceWithPeer() async throws -> (node: NodeRecord, device: DeviceRecord, peer: PeerRecord) {
        let node = try await readyNode(name: "n1")
        _ = try await service.addUser(name: "A", email: "a@example.com", by: actor)
        _ = try await service.createProfileSpec(user: "a@example.com", name: "p", node: node.id, protocol: .amneziawg, by: actor)
        let device = try await service.addDevice(user: "a@example.com", name: "d", by: actor).value
        let peer = try await store.read { tx in try tx.peers(device: device.id)[0] }
        return (node, device, peer)
    }

    /// The provisioning tests' fleet: n1 (AmneziaWG) and n2 (also XRay), and Alice with the
    /// spec "one" on n1 (amneziawg) and "two" on n2 (both).
    func aliceWithTwoSpecs() async throws -> (n1: NodeRecord, n2: NodeRecord, user: UserRecord) {
        let n1 = try await readyNode(name: "n1", address: "198.51.100.1:8444")
        let n2 = try await readyNode(name: "n2", address: "198.51.100.2:8444", xray: true)
        let user = try await service.addUser(name: "Alice", email: "alice@example.com", by: actor)
        _ = try await service.createProfileSpec(user: user.id, name: "one", node: n1.id, protocol: .amneziawg, by: actor)
        _ = try await service.createProfileSpec(user: user.id, name: "two", node: n2.id, protocol: .both, by: actor)
        return (n1, n2, user)
    }
}

enum NodeCSRFixture {
    static func csr(for key: P256.Signing.PrivateKey, commonName: String = "attacker-chosen", san: String = "evil.example") throws -> String {
        let process = Process()
        let dir = "/tmp/cox-csr-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try key.pemRepresentation.write(toFile: "\(dir)/key.pem", atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["req", "-new", "-key", "\(dir)/key.pem", "-subj", "/CN=\(commonName)",
                             "-addext", "subjectAltName=DNS:\(san)", "-out", "\(dir)/csr.pem"]
        try process.run()
        process.waitUntilExit()
        return try String(contentsOfFile: "\(dir)/csr.pem", encoding: .utf8)
    }
}

/// A test harness could not set up what the test needs (a process that did not start, say).
struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
