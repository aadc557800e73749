import Foundation
import PharosWireGuard
import Testing
@testable import NodeAgent

/// The agent's semantics on domain values, over the in-memory data plane (a unit test of one
/// type; the protobuf edge has its own tests in NodeControlServiceTests).
@Suite final class NodeAgentCoreTests {
    let dir: String
    let plane = InMemoryDataPlane()
    let core: NodeAgentCore

    init() throws {
        dir = try Support.temporaryDirectory()
        core = try NodeAgentCore(dataPlane: plane, identity: .generate(), statePath: "\(dir)/state.json", logger: Support.logger)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: dir)
    }

    static func peer(_ id: String, key: String = Support.key(), ip: String) -> PeerSpec {
        PeerSpec(id: id, publicKey: key, allowedIPs: [ip])
    }

    /// The data plane's peers, by public key (base64).
    func planeKeys() async throws -> Set<String> {
        Set(try await plane.status().peers.compactMap { WireGuardKey.base64(fromHex: $0.publicKeyHex) })
    }

    @Test func revisionFencing() async throws {
        let a = Self.peer("a", ip: "10.86.0.2/32")
        #expect(try await core.pushAmneziaWG(revision: 5, peers: [a]).reloaded)
        let same = try await core.pushAmneziaWG(revision: 5, peers: [])
        #expect(same == NodeAgentCore.PushOutcome(appliedRevision: 5, reloaded: false))
        #expect(await core.state.amneziaWGPeers.map(\.id) == ["a"], "an equal revision must not apply its content")
        await #expect(throws: NodeAgentCore.Failure.staleRevision(pushed: 4, applied: 5)) {
            _ = try await core.pushAmneziaWG(revision: 4, peers: [])
        }
        #expect(try await core.pushAmneziaWG(revision: 6, peers: []).appliedRevision == 6)
        #expect(await core.state.amneziaWGPeers.isEmpty)
    }

    enum Expected: Sendable, Equatable {
        case refused
        case unchanged
        case applied
    }

    /// From revision 5 with peer "a" applied: what each pushed revision does to memory, disk
    /// and the data plane.
    @Test(arguments: [(0, .refused), (4, .refused), (5, .unchanged), (6, .applied), (1_000_000, .applied)] as [(Int64, Expected)])
    func aPushOfRevision(_ revision: Int64, _ expected: Expected) async throws {
        let a = Self.peer("a", ip: "10.86.0.2/32")
        _ = try await core.pushAmneziaWG(revision: 5, peers: [a])
        let b = Self.peer("b", ip: "10.86.0.3/32")
        let result: Result<NodeAgentCore.PushOutcome, NodeAgentCore.Failure>
        do { result = .success(try await core.pushAmneziaWG(revision: revision, peers: [b])) } catch { result = .failure(error) }
        let (peers, keys, onDisk) = (await core.state.amneziaWGPeers, try await planeKeys(),
                                     try NodeStateStore(snapshotPath: "\(dir)/state.json").load())
        switch expected {
        case .refused:
            #expect(throws: NodeAgentCore.Failure.staleRevision(pushed: revision, applied: 5)) { try result.get() }
            #expect(peers == [a] && keys == [a.publicKey] && onDisk.amneziaWGPeers == [a] && onDisk.amneziaWGRevision == 5,
                    "a stale push must not overwrite anything")
        case .unchanged:
            #expect(try result.get() == NodeAgentCore.PushOutcome(appliedRevision: 5, reloaded: false))
            #expect(peers == [a] && keys == [a.publicKey] && onDisk.amneziaWGPeers == [a])
        case .applied:
            #expect(try result.get() == NodeAgentCore.PushOutcome(appliedRevision: revision, reloaded: true))
            #expect(peers == [b] && keys == [b.publicKey] && onDisk.amneziaWGPeers == [b] && onDisk.amneziaWGRevision == revision)
        }
    }

    @Test func invalidPushAppliesNothing() async throws {
        _ = try await core.pushAmneziaWG(revision: 1, peers: [Self.peer("a", ip: "10.86.0.2/32")])
        var bad = Self.peer("b", ip: "10.86.0.3/32")
        bad.publicKey = "not-a-key"
        await #expect(throws: NodeAgentCore.Failure.invalidConfig(#"peer "b": public_key must be a base64 32-byte key"#)) {
            _ = try await core.pushAmneziaWG(revision: 2, peers: [Self.peer("c", ip: "10.86.0.4/32"), bad])
        }
        let key = Support.key()
        await #expect(throws: NodeAgentCore.Failure.invalidConfig(#"public key of peer "d2" appears twice"#)) {
            _ = try await core.pushAmneziaWG(revision: 2, peers: [Self.peer("d1", key: key, ip: "10.86.0.5/32"),
                                                                  Self.peer("d2", key: key, ip: "10.86.0.6/32")])
        }
        #expect(await core.state.amneziaWGRevision == 1)
        #expect(await core.state.amneziaWGPeers.map(\.id) == ["a"])
        #expect(try await plane.status().peers.count == 1)
    }

    /// The fence comes before validation: a repeat of the applied revision is answered
    /// unchanged whatever it carries, so a controller retrying never sees a new error.
    @Test func aRepeatedRevisionIsIdempotentEvenWithContentThatWouldNotValidate() async throws {
        let a = Self.peer("a", ip: "10.86.0.2/32")
        _ = try await core.pushAmneziaWG(revision: 3, peers: [a])
        var bad = a
        bad.allowedIPs = ["not a cidr"]
        for _ in 0..<2 {
            #expect(try await core.pushAmneziaWG(revision: 3, peers: [bad]) == NodeAgentCore.PushOutcome(appliedRevision: 3, reloaded: false))
        }
        #expect(await core.state.amneziaWGPeers == [a])
    }

    @Test func addPeerUpsertsAndRemovePeerIsIdempotent() async throws {
        let key = Support.key()
        try await core.addPeer(Self.peer("a", key: key, ip: "10.86.0.2/32"))
        try await core.addPeer(Self.peer("a2", key: key, ip: "10.86.0.9/32"))
        let peers = await core.state.amneziaWGPeers
        #expect(peers.count == 1 && peers[0].id == "a2" && peers[0].allowedIPs == ["10.86.0.9/32"])
        #expect(try await planeKeys() == [key])

        #expect(try await core.removePeer(publicKey: key) == "a2")
        #expect(try await core.removePeer(publicKey: key) == nil, "removing a missing peer succeeds and names nobody")
        #expect(await core.state.amneziaWGPeers.isEmpty)
        #expect(try await plane.status().peers.isEmpty)
        let reloaded = try NodeStateStore(snapshotPath: "\(dir)/state.json").load()
        #expect(reloaded.amneziaWGPeers.isEmpty, "the journal must record the upserts and the removal")
    }

    @Test func anInvalidPeerIsNotAdded() async throws {
        await #expect(throws: NodeAgentCore.Failure.invalidConfig(#"peer "x": allowed_ips "10.86.0.300/32" is not an IPv4 or IPv6 CIDR"#)) {
            try await core.addPeer(Self.peer("x", ip: "10.86.0.300/32"))
        }
        #expect(await core.state.amneziaWGPeers.isEmpty)
    }

    @Test func listPeersFiltersByProtocol() async throws {
        try await core.addPeer(Self.peer("a", ip: "10.86.0.2/32"))
        try await core.addXRayClient(XRayServerConfig.Client(peerID: "x", id: UUID().uuidString))
        #expect(await core.listPeers().map(\.peerID) == ["x", "a"])
        #expect(await core.listPeers(amneziaWG: false).map(\.peerID) == ["x"])
        #expect(await core.listPeers(xrayReality: false).map(\.peerID) == ["a"])
        let first = await core.listPeers(xrayReality: false).first
        guard case .amneziaWG(_, let live)? = first else { Issue.record("no AmneziaWG peer listed"); return }
        #expect(live != nil, "the data plane's view of the peer comes with it")
    }

    @Test func stateSurvivesARestart() async throws {
        _ = try await core.pushAmneziaWG(revision: 3, peers: [Self.peer("a", ip: "10.86.0.2/32"), Self.peer("b", ip: "10.86.0.3/32")])
        #expect(try Support.mode("\(dir)/state.json") == 0o600)
        let plane = InMemoryDataPlane()
        let restarted = try NodeAgentCore(dataPlane: plane, identity: .generate(), statePath: "\(dir)/state.json", logger: Support.logger)
        try await restarted.restore()
        #expect(await restarted.state.amneziaWGRevision == 3)
        #expect(try await plane.status().peers.count == 2)
    }

    @Test func corruptStateRefusesToStart() throws {
        try "{not json".write(toFile: "\(dir)/state.json", atomically: true, encoding: .utf8)
        #expect(throws: NodeStateError.self) {
            _ = try NodeAgentCore(dataPlane: InMemoryDataPlane(), identity: .generate(), statePath: "\(dir)/state.json", logger: Support.logger)
        }
    }

    @Test func statusReportsIdentityAndRevision() async throws {
        _ = try await core.pushAmneziaWG(revision: 2, peers: [Self.peer("a", ip: "10.86.0.2/32")])
        let status = await core.status()
        #expect(status.appliedRevision == 2)
        #expect(status.amneziaWGPublicKey == core.identity.publicKey)
        #expect(status.obfuscation?.h1 == core.identity.obfuscation.h1)
        #expect(status.amneziaWG.peerCount == 1)
        #expect(status.amneziaWG.newestHandshakeAge == nil && status.amneziaWG.handshakingPeers == 0, "no handshake yet")
    }

    @Test func theInMemoryPlaneNeverTouchesTheHostsNetwork() async throws {
        await #expect(throws: NodeAgentCore.Failure.unsupportedProtocol("the in-memory benchmark data plane does not apply network policy")) {
            try await core.setNetworkPolicy(NetworkPolicy(forwarding: true))
        }
    }
}

@Suite struct NodeStateStoreTests {
    @Test func journalReplaysOnTopOfTheSnapshotAndOldGenerationsAreIgnored() throws {
        let dir = try Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = NodeStateStore(snapshotPath: "\(dir)/state.json")
        var state = NodeState()
        state.amneziaWGRevision = 4
        state.amneziaWGPeers = [PeerSpec(id: "a", publicKey: Support.key(), allowedIPs: ["10.0.0.1/32"])]
        try store.saveSnapshot(&state)
        let b = PeerSpec(id: "b", publicKey: Support.key(), allowedIPs: ["10.0.0.2/32"])
        state.apply(.upsert(b, generation: state.generation))
        try store.append(.upsert(b, generation: state.generation), resulting: &state)
        try store.append(.remove(publicKey: state.amneziaWGPeers[0].publicKey, generation: state.generation), resulting: &state)
        // An entry from before the snapshot (a crash between snapshot and journal reset) must not resurrect anything.
        try store.append(.upsert(PeerSpec(id: "ghost", publicKey: Support.key(), allowedIPs: []), generation: 0), resulting: &state)
        // A torn last line, as after a crash mid-append.
        let handle = FileHandle(forWritingAtPath: store.journalPath)!
        handle.seekToEndOfFile()
        handle.write(Data(#"{"gen":1,"op":"ups"#.utf8))
        try handle.close()

        let loaded = try NodeStateStore(snapshotPath: "\(dir)/state.json").load()
        #expect(loaded.amneziaWGRevision == 4)
        #expect(loaded.amneziaWGPeers.map(\.id) == ["b"])
        #expect(try Support.mode(store.journalPath) == 0o600)
    }

    @Test func compactsIntoASnapshot() throws {
        let dir = try Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = NodeStateStore(snapshotPath: "\(dir)/state.json")
        store.compactAfter = 3
        var state = NodeState()
        for i in 0..<5 {
            let peer = PeerSpec(id: "p\(i)", publicKey: Support.key(), allowedIPs: [])
            state.apply(.upsert(peer, generation: state.generation))
            try store.append(.upsert(peer, generation: state.generation), resulting: &state)
        }
        #expect(state.generation == 1)
        #expect(try NodeStateStore(snapshotPath: "\(dir)/state.json").load().amneziaWGPeers.count == 5)
    }
}

/// A stale push must never overwrite a newer one, even when the newer one is still
/// being applied (the actor is reentrant while the data plane works).
@Suite struct ConcurrentPushTests {
    /// Test double: the in-memory plane, slowed down, recording the order of applies.
    final class SlowPlane: DataPlane, @unchecked Sendable {
        let name = "slow test plane"
        let speaksObfuscation = true
        let lock = NSLock()
        var applied: [[String]] = []
        func start(identity: AmneziaWGIdentity, peers: [PeerSpec]) async throws {}
        func replacePeers(_ peers: [PeerSpec], previous: [PeerSpec]) async throws {
            try await Task.sleep(for: .milliseconds(200))
            lock.withLock { applied.append(peers.map(\.id)) }
        }
        func upsertPeer(_ peer: PeerSpec, previous: PeerSpec?) async throws {}
        func removePeer(_ peer: PeerSpec) async throws {}
        func status() async throws -> DataPlaneStatus {
            DataPlaneStatus(running: true, listening: true, peers: [], detail: name)
        }
        func stop() async {}
    }

    @Test func olderRevisionArrivingDuringANewerApplyIsRefused() async throws {
        let dir = try Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let plane = SlowPlane()
        let core = try NodeAgentCore(dataPlane: plane, identity: .generate(), statePath: "\(dir)/state.json", logger: Support.logger)
        let newer = Task { try await core.pushAmneziaWG(revision: 6, peers: [NodeAgentCoreTests.peer("six", ip: "10.86.0.6/32")]) }
        try await Task.sleep(for: .milliseconds(50))
        let older = Task { try await core.pushAmneziaWG(revision: 5, peers: [NodeAgentCoreTests.peer("five", ip: "10.86.0.5/32")]) }
        #expect(try await newer.value.appliedRevision == 6)
        await #expect(throws: NodeAgentCore.Failure.staleRevision(pushed: 5, applied: 6)) { _ = try await older.value }
        #expect(plane.lock.withLock { plane.applied } == [["six"]])
        #expect(await core.state.amneziaWGPeers.map(\.id) == ["six"])
    }
}
