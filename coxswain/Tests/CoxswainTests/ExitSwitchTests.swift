import Crypto
import Foundation
import PharosProto
import PharosSpec
import Testing
@testable import Coxswain

/// The live exit switch (`cox paths bind|unbind`) on a real SQLite state: what moves (the
/// entry's transit route, the exits' link peers) and what must not (the device's keys, its
/// sealed profile). e2e/fleet.sh step 10 switches a connected client's exit and back.
@Suite struct ExitSwitchTests {
    let paths = PathTests()

    /// The entry's transit routes as "address interface", and the addresses each exit's link
    /// peer (the entry) holds.
    func routes(_ state: TestState, entry: NodeRecord, exits: [NodeRecord]) throws -> (transits: [String], carried: [[String]]) {
        let transits = try paths.plan(state, entry.id).network.config.transits.map { "\($0.deviceCidr) \($0.innerInterface)" }
        let carried = try exits.map { exit in
            let awg = try Pharos_Node_V1_AmneziaWGConfig(serializedBytes: try paths.plan(state, exit.id).requests[0].config)
            return awg.peers.filter { $0.id.hasPrefix("link:") }.flatMap(\.allowedIps)
        }
        return (transits, carried)
    }

    /// What the device holds: its peers' keys and its sealed profile, which a switch must not touch.
    func deviceSide(_ state: TestState, _ device: DeviceRecord) throws -> [String] {
        try state.store.readNow { tx in
            try tx.peers(device: device.id).map { "\($0.id) \($0.publicKey) \($0.presharedKey)" }
                + [try tx.profile(device: device.id).map { "r\($0.revision) \($0.ciphertext.base64EncodedString())" } ?? "none"]
        }
    }

    @Test func aDirectDeviceLeavesByTheBoundExitAndBackWithoutResync() async throws {
        let (state, n1, n2, n3, laptop) = try await paths.fleet()
        _ = try await state.service.removeDevice(laptop.id, by: state.actor)
        // A device with a key of its own: its profile is sealed, so an unchanged one proves something.
        let key = Array(Curve25519.KeyAgreement.PrivateKey().publicKey.rawRepresentation)
        let device = try await state.service.addDevice(user: "alice@example.com", name: "laptop", encryptionKey: key, by: state.actor).value
        _ = try await state.service.createProfileSpec(user: "alice@example.com", name: "direct", node: "n1", protocol: .amneziawg, by: state.actor)
        _ = try await state.service.addPath(name: "via-n2", hops: ["n1", "n2"], by: state.actor)
        _ = try await state.service.addPath(name: "via-n3", hops: ["n1", "n3"], by: state.actor)
        let address = "\(device.tunnelIP)/32"
        let held = try deviceSide(state, device)
        #expect(held.count == 2 && held.last != "none")
        #expect(try routes(state, entry: n1, exits: [n2, n3]) == ([], [[], []]))

        let revisions = try state.store.readNow { tx in try tx.nodes().map(\.configRevision) }
        let bound = try await state.service.bindExit(device: "laptop", path: "via-n2", by: state.actor)
        #expect(bound.affectedNodes == [n1.id, n2.id, n3.id], "the entry and every node sharing a path with it")
        #expect(try state.store.readNow { tx in try tx.nodes().map(\.configRevision) } == revisions.map { $0 + 1 })
        #expect(try routes(state, entry: n1, exits: [n2, n3]) == (["\(address) awg1"], [[address], []]))

        let moved = try await state.service.bindExit(device: device.id, path: "via-n3", by: state.actor)
        #expect(moved.value.previous?.name == "via-n2")
        #expect(try routes(state, entry: n1, exits: [n2, n3]) == (["\(address) awg2"], [[], [address]]))

        let unbound = try await state.service.unbindExit(device: "laptop", by: state.actor)
        #expect(unbound.value.previous?.name == "via-n3" && unbound.value.path == nil)
        #expect(try routes(state, entry: n1, exits: [n2, n3]) == ([], [[], []]))
        #expect(try deviceSide(state, device) == held, "a switch must not touch the device's keys or sealed profile")
        let actions = try state.store.readNow { tx in try tx.auditChain().map(\.action) }.filter { $0.hasPrefix("device.") }
        #expect(actions.suffix(3) == ["device.bind", "device.bind", "device.unbind"])
    }

    /// A device on a path profile switched to another path from the same entry: the old
    /// exit's link peer lets go of it, the new one takes it; unbinding restores the profile's.
    @Test func aPathDeviceSwitchesToAnotherExitOfItsEntry() async throws {
        let (state, n1, n2, n3, device) = try await paths.fleet()
        _ = try await state.service.addPath(name: "via-n2", hops: ["n1", "n2"], by: state.actor)
        _ = try await state.service.addPath(name: "via-n3", hops: ["n1", "n3"], by: state.actor)
        _ = try await state.service.createProfileSpec(user: "alice@example.com", name: "cascade", node: nil, path: "via-n2",
                                                      protocol: .amneziawg, by: state.actor)
        let address = "\(device.tunnelIP)/32"
        #expect(try routes(state, entry: n1, exits: [n2, n3]) == (["\(address) awg1"], [[address], []]))
        _ = try await state.service.bindExit(device: "laptop", path: "via-n3", by: state.actor)
        #expect(try routes(state, entry: n1, exits: [n2, n3]) == (["\(address) awg2"], [[], [address]]))
        // A later reprovision (a second profile) keeps the binding and names it in the bundle.
        let reprovisioned = try state.store.readNow { tx in
            try DeviceProvisioning.plan(device: device, user: try tx.user(device.userID), specs: try tx.profileSpecs(for: device),
                                        nodes: Dictionary(uniqueKeysWithValues: try tx.nodes().map { ($0.id, $0) }), config: state.config,
                                        fleetID: "f", revision: 2, now: Date(),
                                        paths: Dictionary(uniqueKeysWithValues: try tx.paths().map { ($0.id, $0) }),
                                        exit: try tx.path("via-n3"))
        }
        #expect(reprovisioned.bundle.profiles.first?.path?.hops.last?.id == n3.id)
        _ = try await state.service.unbindExit(device: "laptop", by: state.actor)
        #expect(try routes(state, entry: n1, exits: [n2, n3]) == (["\(address) awg1"], [[address], []]))
    }

    /// A 3-hop binding: the mid carries the device on to the exit.
    @Test func aThreeHopBindingReachesTheMid() async throws {
        let (state, n1, n2, n3, device) = try await paths.fleet()
        _ = try await state.service.createProfileSpec(user: "alice@example.com", name: "direct", node: "n1", protocol: .amneziawg, by: state.actor)
        _ = try await state.service.addPath(name: "long", hops: ["n1", "n2", "n3"], by: state.actor)
        _ = try await state.service.bindExit(device: "laptop", path: "long", by: state.actor)
        let address = "\(device.tunnelIP)/32"
        #expect(try paths.plan(state, n2.id).network.config.transits.map { "\($0.deviceCidr) \($0.innerInterface)" } == ["\(address) awg2"])
        #expect(try routes(state, entry: n2, exits: [n3]).carried == [[address]])
        #expect(try routes(state, entry: n1, exits: [n2]).carried == [[address]])
    }

    @Test func refusalsWriteNothing() async throws {
        let (state, _, _, _, device) = try await paths.fleet()
        _ = try await state.service.addPath(name: "via-n2", hops: ["n1", "n2"], by: state.actor)
        _ = try await state.service.addPath(name: "via-n3", hops: ["n1", "n3"], by: state.actor)
        func unchanged() throws -> [String] {
            try state.store.readNow { tx in try tx.exitBindings().map { "\($0.deviceID)>\($0.pathID)" } + (try tx.nodes().map { "\($0.configRevision)" }) }
        }
        // No profile enters at n1 yet.
        _ = try await state.service.createProfileSpec(user: "alice@example.com", name: "on-n2", node: "n2", protocol: .amneziawg, by: state.actor)
        var before = try unchanged()
        await #expect(throws: FleetInputError.notAtEntry(device: "laptop", path: "via-n3", entry: "n1")) {
            _ = try await state.service.bindExit(device: "laptop", path: "via-n3", by: state.actor)
        }
        #expect(try unchanged() == before)
        // Entering at n1 and leaving at n2 directly: n2 would route the address two ways.
        _ = try await state.service.createProfileSpec(user: "alice@example.com", name: "on-n1", node: "n1", protocol: .amneziawg, by: state.actor)
        before = try unchanged()
        await #expect(throws: ProvisioningError.cascadeConflict(device: "laptop", node: "n2")) {
            _ = try await state.service.bindExit(device: "laptop", path: "via-n2", by: state.actor)
        }
        await #expect(throws: FleetInputError.notBound(device: "laptop")) {
            _ = try await state.service.unbindExit(device: "laptop", by: state.actor)
        }
        await #expect(throws: StoreError.notFound(kind: "device", id: "tablet")) {
            _ = try await state.service.bindExit(device: "tablet", path: "via-n3", by: state.actor)
        }
        await #expect(throws: StoreError.notFound(kind: "path", id: "nowhere")) {
            _ = try await state.service.bindExit(device: "laptop", path: "nowhere", by: state.actor)
        }
        #expect(try unchanged() == before)

        // A bound path stays until its devices are unbound or removed.
        _ = try await state.service.bindExit(device: "laptop", path: "via-n3", by: state.actor)
        await #expect(throws: FleetInputError.pathBound(path: "via-n3", devices: ["laptop"])) {
            _ = try await state.service.removePath("via-n3", by: state.actor)
        }
        // Two devices named alike: the name no longer says which.
        _ = try await state.service.addUser(name: "Bob", email: "bob@example.com", by: state.actor)
        let other = try await state.service.addDevice(user: "bob@example.com", name: "laptop", by: state.actor).value
        do {
            _ = try await state.service.unbindExit(device: "laptop", by: state.actor)
            Issue.record("an ambiguous device name was accepted")
        } catch let error as StoreError {
            #expect(error == .ambiguous(kind: "device", name: "laptop", ids: [device.id, other.id].sorted()))
        }
        _ = try await state.service.removeDevice(device.id, by: state.actor)
        #expect(try state.store.readNow { tx in try tx.exitBindings() }.isEmpty, "the binding goes with its device")
        _ = try await state.service.removePath("via-n3", by: state.actor)
    }

    /// A profile added while bound goes through the service: the binding and its routes hold,
    /// and the resealed bundle names the bound path and its MTU for the entry's profile.
    /// (A profile with both protocols at the entry too: its AmneziaWG half takes the path.)
    @Test(arguments: [ProfileProtocol.amneziawg, .both])
    func aReprovisionWhileBoundKeepsTheBindingAndNamesItsPath(_ proto: ProfileProtocol) async throws {
        let state = try TestState()
        let n1 = try await state.readyNode(name: "n1", address: "198.51.100.1:8444", xray: true)
        let n2 = try await state.readyNode(name: "n2", address: "198.51.100.2:8444")
        let n3 = try await state.readyNode(name: "n3", address: "198.51.100.3:8444")
        _ = try await state.service.addUser(name: "Alice", email: "alice@example.com", by: state.actor)
        let key = Curve25519.KeyAgreement.PrivateKey()
        let device = try await state.service.addDevice(user: "alice@example.com", name: "laptop",
                                                       encryptionKey: Array(key.publicKey.rawRepresentation), by: state.actor).value
        _ = try await state.service.createProfileSpec(user: "alice@example.com", name: "direct", node: "n1", protocol: proto, by: state.actor)
        _ = try await state.service.addPath(name: "via-n3", hops: ["n1", "n3"], by: state.actor)
        _ = try await state.service.bindExit(device: "laptop", path: "via-n3", by: state.actor)
        _ = try await state.service.createProfileSpec(user: "alice@example.com", name: "on-n2", node: "n2", protocol: .amneziawg, by: state.actor)
        let address = "\(device.tunnelIP)/32"
        #expect(try state.store.readNow { tx in try tx.exitBinding(device: device.id) }?.pathID == (try state.store.readNow { tx in try tx.path("via-n3").id }))
        #expect(try routes(state, entry: n1, exits: [n3]) == (["\(address) awg1"], [[address]]))
        let sealed = try #require(try state.store.readNow { tx in try tx.profile(device: device.id) })
        let bundle = try ProfileBundle(jsonBytes: try SealedBundle.open(Array(sealed.ciphertext), with: key,
                                                                        signingPublicKey: state.pki.signingKey.publicKey))
        let direct = try #require(bundle.profiles.first { $0.name == "direct" })
        #expect(direct.path?.name == "via-n3" && direct.path?.hops.last?.id == n3.id && direct.mtu == 1340)
        #expect(bundle.profiles.first { $0.name == "on-n2" }?.nodes.first?.id == n2.id)
    }

    /// While bound, a profile that disagrees with the others only without the binding is
    /// refused (or unbinding could never succeed afterwards).
    @Test func profilesMustAgreeWithoutTheBindingToo() async throws {
        let (state, _, _, _, _) = try await paths.fleet()
        _ = try await state.service.createProfileSpec(user: "alice@example.com", name: "direct", node: "n1", protocol: .amneziawg, by: state.actor)
        _ = try await state.service.addPath(name: "via-n2", hops: ["n1", "n2"], by: state.actor)
        _ = try await state.service.addPath(name: "via-n3", hops: ["n1", "n3"], by: state.actor)
        _ = try await state.service.bindExit(device: "laptop", path: "via-n3", by: state.actor)
        await #expect(throws: ProvisioningError.cascadeConflict(device: "laptop", node: "n1")) {
            _ = try await state.service.createProfileSpec(user: "alice@example.com", name: "cascade", node: nil, path: "via-n2",
                                                          protocol: .amneziawg, by: state.actor)
        }
        _ = try await state.service.unbindExit(device: "laptop", by: state.actor)
    }

    /// The binding ends with the device's profile on its entry: a later profile there leaves
    /// where it says.
    @Test func aBindingEndsWithItsEntryProfile() async throws {
        let (state, n1, _, n3, device) = try await paths.fleet()
        let direct = try await state.service.createProfileSpec(user: "alice@example.com", name: "direct", node: "n1",
                                                               protocol: .amneziawg, by: state.actor).value
        _ = try await state.service.addPath(name: "via-n3", hops: ["n1", "n3"], by: state.actor)
        _ = try await state.service.bindExit(device: "laptop", path: "via-n3", by: state.actor)
        let removed = try await state.service.removeProfileSpec(direct.id, by: state.actor)
        #expect(removed.affectedNodes.isSuperset(of: [n1.id, n3.id]))
        #expect(try state.store.readNow { tx in try tx.exitBindings() }.isEmpty)
        _ = try await state.service.createProfileSpec(user: "alice@example.com", name: "again", node: "n1", protocol: .amneziawg, by: state.actor)
        #expect(try routes(state, entry: n1, exits: [n3]) == ([], [[]]))
        #expect(try state.store.readNow { tx in try tx.peers(device: device.id).map(\.nodeID) } == [n1.id])
    }
}
