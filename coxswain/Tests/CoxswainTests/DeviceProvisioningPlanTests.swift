import Crypto
import Foundation
import PharosSpec
import Synchronization
import Testing
@testable import Coxswain

/// The provisioning planner on its own: records in, peers and bundle out, with the key source
/// injected so a plan can be compared whole.
@Suite struct DeviceProvisioningPlanTests {
    /// Keys and identifiers drawn in sequence from a counter: the same sequence every run.
    static func fixedKeys() -> ProvisioningKeys {
        let counter = Mutex(0)
        let next: @Sendable () -> Int = { counter.withLock { value in value += 1; return value } }
        return ProvisioningKeys(
            wireGuardKey: { try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: Data(repeating: UInt8(next()), count: 32)) },
            presharedKey: { Data(repeating: UInt8(next()), count: 32).base64EncodedString() },
            xrayUUID: { "00000000-0000-0000-0000-\(String(format: "%012d", next()))" },
            peerID: { "per_fixed\(next())" })
    }

    struct Fixture {
        var device: DeviceRecord
        var user: UserRecord
        var specs: [ProfileSpecRecord]
        var nodes: [String: NodeRecord]
        var config: CoxConfig
    }

    func fixture() async throws -> Fixture {
        let state = try TestState()
        let (_, _, user) = try await state.aliceWithTwoSpecs()
        let device = try await state.service.addDevice(user: user.id, name: "laptop", by: state.actor).value
        return try await state.store.read { tx in
            Fixture(device: device, user: user, specs: try tx.profileSpecs(user: user.id),
                    nodes: Dictionary(uniqueKeysWithValues: try tx.nodes().map { ($0.id, $0) }), config: state.config)
        }
    }

    func plan(_ f: Fixture, keys: ProvisioningKeys) throws -> DeviceProvisioning.Plan {
        try DeviceProvisioning.plan(device: f.device, user: f.user, specs: f.specs, nodes: f.nodes, config: f.config,
                                    fleetID: "sha256:fleet", revision: 3, now: Date(timeIntervalSince1970: 1_800_000_000), keys: keys)
    }

    @Test func aPlanIsAFunctionOfItsInputsAndItsKeys() async throws {
        let f = try await fixture()
        let first = try plan(f, keys: Self.fixedKeys())
        let second = try plan(f, keys: Self.fixedKeys())
        #expect(first.peers == second.peers && first.bundle == second.bundle)
        // One WireGuard key for the device, one PSK per node, one UUID for the XRay node.
        let key = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: Data(repeating: 1, count: 32))
        let awg = first.peers.filter { $0.protocol == .amneziawg }
        #expect(awg.count == 2 && awg.allSatisfy { $0.publicKey == key.publicKey.rawRepresentation.base64EncodedString() })
        #expect(Set(awg.map(\.presharedKey)).count == 2)
        #expect(first.peers.filter { $0.protocol == .xrayReality }.map(\.publicKey).allSatisfy { $0.hasPrefix("00000000-") })
        #expect(first.peers.allSatisfy { $0.id.hasPrefix("per_fixed") })
        #expect(first.bundle.revision == 3 && first.bundle.profiles.count == 2)
    }

    @Test func theSystemSourceDrawsFreshKeysAtEveryProvisioning() async throws {
        let f = try await fixture()
        let first = try plan(f, keys: .system)
        let second = try plan(f, keys: .system)
        #expect(first.peers.map(\.publicKey) != second.peers.map(\.publicKey))
        #expect(first.peers.map(\.presharedKey) != second.peers.map(\.presharedKey))
    }
}
