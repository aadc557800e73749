import Foundation
import PharosProto
import PharosSpec
import Testing
@testable import Coxswain

/// Cascades on a real SQLite state: `cox paths add|rm`, profile specs with `--path`, what
/// each hop is pushed (inner links, transit routes, the previous hop as a peer), the
/// refusals. e2e/fleet.sh step 10 carries packets through a real one.
@Suite struct PathTests {
    /// n1 → n2 → n3 ready, Alice with one device.
    func fleet() async throws -> (state: TestState, n1: NodeRecord, n2: NodeRecord, n3: NodeRecord, device: DeviceRecord) {
        let state = try TestState()
        let n1 = try await state.readyNode(name: "n1", address: "198.51.100.1:8444")
        let n2 = try await state.readyNode(name: "n2", address: "198.51.100.2:8444")
        let n3 = try await state.readyNode(name: "n3", address: "198.51.100.3:8444")
        _ = try await state.service.addUser(name: "Alice", email: "alice@example.com", by: state.actor)
        let device = try await state.service.addDevice(user: "alice@example.com", name: "laptop", by: state.actor).value
        return (state, n1, n2, n3, device)
    }

    func plan(_ state: TestState, _ nodeID: String) throws -> NodeConfigPlan {
        try state.store.readNow { tx in
            try NodeConfigPlan.build(node: try tx.node(nodeID), peers: try tx.peers(node: nodeID), config: state.config,
                                     cascade: try tx.cascade(for: nodeID))
        }
    }

    @Test func aPathAllocatesOneLinkPerHopAndSharesIt() async throws {
        let (state, n1, n2, n3, _) = try await fleet()
        let revisions = try state.store.readNow { tx in try tx.nodes().map(\.configRevision) }
        let three = try await state.service.addPath(name: "long", hops: ["n1", "n2", "n3"], by: state.actor)
        #expect(three.value.hops == [n1.id, n2.id, n3.id])
        #expect(three.affectedNodes == [n1.id, n2.id, n3.id])
        #expect(try state.store.readNow { tx in try tx.nodes().map(\.configRevision) } == revisions.map { $0 + 1 })
        _ = try await state.service.addPath(name: "short", hops: ["n1", "n3"], by: state.actor)
        _ = try await state.service.addPath(name: "again", hops: [n1.id, n2.id], by: state.actor)
        let links = try state.store.readNow { tx in try tx.nodeLinks() }.map { "\($0.entryNodeID)>\($0.exitNodeID) \($0.innerInterface) \($0.listenPort) \($0.fwmark) \($0.tableID)" }
        #expect(Set(links) == [
            "\(n1.id)>\(n2.id) awg1 51901 20481 5001", "\(n2.id)>\(n3.id) awg2 51902 20482 5002", "\(n1.id)>\(n3.id) awg3 51903 20483 5003",
        ])
    }

    @Test(arguments: [
        (["n1"], "a path has 2 or 3 hops"), (["n1", "n2", "n3", "n1"], "a path has 2 or 3 hops"),
        (["n1", "n2", "n1"], "a node appears twice"), (["n1", "nowhere"], "no node nowhere"),
    ])
    func badHopsAreRefused(_ hops: [String], _ reason: String) async throws {
        let (state, _, _, _, _) = try await fleet()
        do {
            _ = try await state.service.addPath(name: "bad", hops: hops, by: state.actor)
            Issue.record("\(hops) was accepted")
        } catch {
            #expect("\(error)".contains(reason), "\(error)")
        }
        #expect(try state.store.readNow { tx in (try tx.paths().count, try tx.nodeLinks().count) } == (0, 0))
    }

    /// Alice's device on the path n1 → n2: its peer only on n1; n1 starts the inner link and
    /// routes her address into it; n2 has n1 as a peer holding her address.
    @Test func eachHopIsPushedItsPart() async throws {
        let (state, n1, n2, _, device) = try await fleet()
        _ = try await state.service.addPath(name: "a-to-b", hops: ["n1", "n2"], by: state.actor)
        let created = try await state.service.createProfileSpec(user: "alice@example.com", name: "cascade", node: nil, path: "a-to-b",
                                                                protocol: .amneziawg, by: state.actor)
        #expect(created.affectedNodes == [n1.id, n2.id])
        let peers = try state.store.readNow { tx in try tx.peers(device: device.id) }
        #expect(peers.map(\.nodeID) == [n1.id])
        let address = "\(device.tunnelIP)/32"

        let entry = try plan(state, n1.id)
        #expect(entry.innerLinks.count == 1)
        let link = try #require(entry.innerLinks.first)
        #expect(link.config.interface == "awg1" && link.config.listenPort == 51901 && link.revision == entry.revision)
        #expect(link.config.exit.publicKey == n2.wgPublicKey && link.config.exit.allowedIps == ["0.0.0.0/0"])
        #expect(link.config.exit.endpoints == ["\(n2.publicIP.isEmpty ? n2.host : n2.publicIP):\(n2.wgPort)"])
        #expect(!link.config.hasPeerObfuscation, "the fixture nodes report no obfuscation set: none is sent")
        #expect(entry.network.config.forwarding)
        #expect(entry.network.config.transits.map { "\($0.deviceCidr) \($0.innerInterface) \($0.mark) \($0.table)" } == ["\(address) awg1 20481 5001"])

        let exit = try plan(state, n2.id)
        #expect(exit.innerLinks.isEmpty && exit.network.config.transits.isEmpty)
        let awg = try Pharos_Node_V1_AmneziaWGConfig(serializedBytes: exit.requests[0].config)
        let linkPeer = try #require(awg.peers.first { $0.id.hasPrefix("link:") })
        #expect(linkPeer.publicKey == n1.wgPublicKey && linkPeer.allowedIps == [address])

        // A second device of Alice's joins the path: the exit's link peer carries both.
        let second = try await state.service.addDevice(user: "alice@example.com", name: "phone", by: state.actor)
        #expect(second.affectedNodes.contains(n2.id), "the exit must be pushed when a device joins the path")
        let both = try Pharos_Node_V1_AmneziaWGConfig(serializedBytes: try plan(state, n2.id).requests[0].config)
        #expect(both.peers.first { $0.id.hasPrefix("link:") }?.allowedIps.count == 2)
    }

    @Test func theBundleNamesThePathAndAHopAwareMTU() async throws {
        let (state, n1, n2, n3, device) = try await fleet()
        _ = try await state.service.addPath(name: "three", hops: ["n1", "n2", "n3"], by: state.actor)
        _ = try await state.service.createProfileSpec(user: "alice@example.com", name: "via", node: nil, path: "three",
                                                      protocol: .amneziawg, by: state.actor)
        let plan = try state.store.readNow { tx in
            try DeviceProvisioning.plan(device: device, user: try tx.user(device.userID), specs: try tx.profileSpecs(for: device),
                                        nodes: Dictionary(uniqueKeysWithValues: try tx.nodes().map { ($0.id, $0) }), config: state.config,
                                        fleetID: "f", revision: 1, now: Date(),
                                        paths: Dictionary(uniqueKeysWithValues: try tx.paths().map { ($0.id, $0) }))
        }
        #expect(plan.peers.map(\.nodeID) == [n1.id], "the device is a peer of the entry only")
        let profile = try #require(plan.bundle.profiles.first)
        #expect(profile.nodes.map(\.id) == [n1.id])
        func ip(_ node: NodeRecord) -> String { node.publicIP.isEmpty ? node.host : node.publicIP }
        #expect(profile.path?.name == "three")
        #expect(profile.path?.hops.map { "\($0.id):\($0.role):\($0.ips)" }
                == ["\(n1.id):entry:\([ip(n1)])", "\(n2.id):mid:\([ip(n2)])", "\(n3.id):exit:\([ip(n3)])"])
        #expect(profile.mtu == 1280, "1420 less 80 for each of two inner links, never under 1280")
        #expect(DeviceProvisioning.cascadeMTU(hops: 2) == 1340)
    }

    @Test func aNodeReachedTwoWaysIsRefusedAndNothingChanges() async throws {
        let (state, _, _, _, device) = try await fleet()
        _ = try await state.service.addPath(name: "a-to-b", hops: ["n1", "n2"], by: state.actor)
        _ = try await state.service.createProfileSpec(user: "alice@example.com", name: "direct", node: "n2", protocol: .amneziawg, by: state.actor)
        let before = try state.store.readNow { tx in (try tx.peers(device: device.id).map(\.id), try tx.profileSpecs().count) }
        await #expect(throws: ProvisioningError.cascadeConflict(device: "laptop", node: "n2")) {
            _ = try await state.service.createProfileSpec(user: "alice@example.com", name: "cascade", node: nil, path: "a-to-b",
                                                          protocol: .amneziawg, by: state.actor)
        }
        #expect(try state.store.readNow { tx in (try tx.peers(device: device.id).map(\.id), try tx.profileSpecs().count) } == before)
    }

    /// Two profiles that would route the device differently at one node: refused whatever the
    /// mix; two paths that agree (the same hops under two names) are not.
    @Test(arguments: [
        ([nil, "n1>n2"] as [String?], "n1"), (["n1>n2", "n1>n3"], "n1"), (["n1>n2", "n1>n2>n3"], "n2"), (["n2", "n1>n2"], "n2"),
    ] as [([String?], String)])
    func everyTwoWayRouteIsRefused(_ profiles: [String?], _ node: String) async throws {
        let (state, _, _, _, device) = try await fleet()
        var specs: [(node: String?, path: String?)] = []
        for (index, profile) in profiles.enumerated() {
            guard let profile, profile.contains(">") else { specs.append((profile ?? "n1", nil)); continue }
            _ = try await state.service.addPath(name: "p\(index)", hops: profile.components(separatedBy: ">"), by: state.actor)
            specs.append((nil, "p\(index)"))
        }
        _ = try await state.service.createProfileSpec(user: "alice@example.com", name: "first", node: specs[0].node, path: specs[0].path,
                                                      protocol: .amneziawg, by: state.actor)
        let before = try state.store.readNow { tx in try tx.peers(device: device.id).map(\.id) }
        await #expect(throws: ProvisioningError.cascadeConflict(device: "laptop", node: node)) {
            _ = try await state.service.createProfileSpec(user: "alice@example.com", name: "second", node: specs[1].node, path: specs[1].path,
                                                          protocol: .amneziawg, by: state.actor)
        }
        #expect(try state.store.readNow { tx in try tx.peers(device: device.id).map(\.id) } == before)
    }

    @Test func twoNamesForTheSameHopsAgree() async throws {
        let (state, _, _, _, _) = try await fleet()
        _ = try await state.service.addPath(name: "one", hops: ["n1", "n2"], by: state.actor)
        _ = try await state.service.addPath(name: "two", hops: ["n1", "n2"], by: state.actor)
        for path in ["one", "two"] {
            _ = try await state.service.createProfileSpec(user: "alice@example.com", name: path, node: nil, path: path,
                                                          protocol: .amneziawg, by: state.actor)
        }
    }

    /// Three hops: the mid both ends a link (the entry as its peer) and starts one (with the
    /// device's transit route), and the exit has the mid as its peer.
    @Test func aMidHopEndsOneLinkAndStartsTheNext() async throws {
        let (state, n1, n2, n3, device) = try await fleet()
        _ = try await state.service.addPath(name: "three", hops: ["n1", "n2", "n3"], by: state.actor)
        _ = try await state.service.createProfileSpec(user: "alice@example.com", name: "via", node: nil, path: "three",
                                                      protocol: .amneziawg, by: state.actor)
        let address = "\(device.tunnelIP)/32"
        func linkPeers(_ plan: NodeConfigPlan) throws -> [String] {
            try Pharos_Node_V1_AmneziaWGConfig(serializedBytes: plan.requests[0].config).peers.filter { $0.id.hasPrefix("link:") }
                .map { "\($0.publicKey) \($0.allowedIps)" }
        }
        let mid = try plan(state, n2.id)
        #expect(try linkPeers(mid) == ["\(n1.wgPublicKey!) [\"\(address)\"]"])
        #expect(mid.innerLinks.map { "\($0.config.interface) \($0.config.exit.publicKey)" } == ["awg2 \(n3.wgPublicKey!)"])
        #expect(mid.network.config.transits.map { "\($0.deviceCidr) \($0.innerInterface)" } == ["\(address) awg2"])
        let exit = try plan(state, n3.id)
        #expect(try linkPeers(exit) == ["\(n2.wgPublicKey!) [\"\(address)\"]"])
        #expect(exit.innerLinks.isEmpty && exit.network.config.transits.isEmpty)
        #expect(try plan(state, n1.id).innerLinks.map(\.config.exit.publicKey) == [n2.wgPublicKey!])
    }

    @Test func refusalsNameWhatToDo() async throws {
        let (state, _, _, _, _) = try await fleet()
        _ = try await state.service.addPath(name: "a-to-b", hops: ["n1", "n2"], by: state.actor)
        await #expect(throws: FleetInputError.xrayOnPath(path: "a-to-b")) {
            _ = try await state.service.createProfileSpec(user: "alice@example.com", name: "x", node: nil, path: "a-to-b",
                                                          protocol: .both, by: state.actor)
        }
        await #expect(throws: FleetInputError.nodeOrPath) {
            _ = try await state.service.createProfileSpec(user: "alice@example.com", name: "x", node: "n1", path: "a-to-b",
                                                          protocol: .amneziawg, by: state.actor)
        }
        let spec = try await state.service.createProfileSpec(user: "alice@example.com", name: "cascade", node: nil, path: "a-to-b",
                                                             protocol: .amneziawg, by: state.actor).value
        await #expect(throws: FleetInputError.pathInUse(path: "a-to-b", profiles: ["cascade"])) {
            _ = try await state.service.removePath("a-to-b", by: state.actor)
        }
        await #expect(throws: FleetInputError.nodeInPaths(node: "n2", paths: ["a-to-b"])) {
            _ = try await state.service.removeNode("n2", by: state.actor)
        }
        _ = try await state.service.removeProfileSpec(spec.id, by: state.actor)
        _ = try await state.service.removeNode("n3", by: state.actor)  // in no path
        #expect(try state.store.readNow { tx in try tx.nodes().count } == 2)
    }

    /// A removed path's link is retired: its entry is told to remove it (once), then the
    /// interface name is free again.
    @Test func aRemovedPathRetiresItsLinks() async throws {
        let (state, n1, n2, _, _) = try await fleet()
        _ = try await state.service.addPath(name: "a-to-b", hops: ["n1", "n2"], by: state.actor)
        _ = try await state.service.addPath(name: "a-to-b-again", hops: ["n1", "n2"], by: state.actor)
        _ = try await state.service.removePath("a-to-b", by: state.actor)
        #expect(try plan(state, n1.id).retiredLinks.isEmpty, "the link is still used by the other path")
        let removed = try await state.service.removePath("a-to-b-again", by: state.actor)
        #expect(removed.affectedNodes == [n1.id, n2.id])
        let entry = try plan(state, n1.id)
        #expect(entry.retiredLinks == ["awg1"] && entry.innerLinks.isEmpty && entry.network.config.transits.isEmpty)
        try state.store.writeNow { tx in try tx.forgetRetiredLink(entry: n1.id, interface: "awg1") }
        #expect(try plan(state, n1.id).retiredLinks.isEmpty)
        _ = try await state.service.addPath(name: "new", hops: ["n1", "n2"], by: state.actor)
        #expect(try state.store.readNow { tx in try tx.nodeLinks().map(\.innerInterface) } == ["awg1"])
    }

    /// `--color` and `cox paths color`: normalized to #rrggbb, a bad one refused with nothing
    /// written; `cox paths provision` pushes every hop again and nothing else.
    @Test func colorsAndProvision() async throws {
        let (state, n1, n2, n3, _) = try await fleet()
        let path = try await state.service.addPath(name: "a-to-b", hops: ["n1", "n2"], color: "2F80ED", by: state.actor).value
        #expect(path.color == "#2f80ed")
        await #expect(throws: FleetInputError.pathColor("blue")) {
            _ = try await state.service.addPath(name: "other", hops: ["n1", "n3"], color: "blue", by: state.actor)
        }
        await #expect(throws: FleetInputError.pathColor("#12345")) {
            _ = try await state.service.setPathColor("a-to-b", color: "#12345", by: state.actor)
        }
        #expect(try state.store.readNow { tx in try tx.paths().map { "\($0.name) \($0.color)" } } == ["a-to-b #2f80ed"])
        _ = try await state.service.setPathColor("a-to-b", color: "", by: state.actor)
        #expect(try state.store.readNow { tx in try tx.path("a-to-b").color }.isEmpty)

        let revisions = try state.store.readNow { tx in try tx.nodes().map { ($0.id, $0.configRevision) } }
        let provisioned = try await state.service.provisionPath("a-to-b", by: state.actor)
        #expect(provisioned.affectedNodes == [n1.id, n2.id])
        let after = try state.store.readNow { tx in Dictionary(uniqueKeysWithValues: try tx.nodes().map { ($0.id, $0.configRevision) }) }
        for (id, revision) in revisions { #expect(after[id] == revision + (id == n3.id ? 0 : 1)) }
        let actions = try state.store.readNow { tx in try tx.auditChain().map(\.action) }
        #expect(actions.suffix(3) == ["path.add", "path.color", "path.provision"])
    }
}
