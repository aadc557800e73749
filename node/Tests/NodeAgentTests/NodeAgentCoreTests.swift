import Foundation
import PharosProto
import SwiftProtobuf
import Testing
@testable import NodeAgent

/// The agent's semantics, over the in-memory data plane (a unit test of one type).
@Suite final class NodeAgentCoreTests {
    let dir: String
    let core: NodeAgentCore

    init() throws {
        dir = try Support.temporaryDirectory()
        core = try NodeAgentCore(dataPlane: InMemoryDataPlane(), identity: .generate(), statePath: "\(dir)/state.json", logger: Support.logger)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: dir)
    }

    static func peer(_ id: String, key: String = Support.key(), ip: String) -> Pharos_Node_V1_Peer {
        var p = Pharos_Node_V1_Peer()
        p.id = id
        p.protocol = .amneziawg
        p.publicKey = key
        p.allowedIps = [ip]
        return p
    }

    static func push(_ revision: Int64, _ peers: [Pharos_Node_V1_Peer]) throws -> Pharos_Node_V1_PushConfigRequest {
        var config = Pharos_Node_V1_AmneziaWGConfig()
        config.peers = peers
        var request = Pharos_Node_V1_PushConfigRequest()
        request.protocol = .amneziawg
        request.revision = revision
        request.config = try config.serializedData()
        return request
    }

    @Test func revisionFencing() async throws {
        let a = Self.peer("a", ip: "10.86.0.2/32")
        #expect(try await core.pushConfig(Self.push(5, [a])).reloaded)
        let same = try await core.pushConfig(Self.push(5, []))
        #expect(same.reloaded == false && same.appliedRevision == 5)
        #expect(await core.state.amneziaWGPeers.map(\.id) == ["a"], "an equal revision must not apply its content")
        await #expect(throws: NodeAgentCore.Failure.staleRevision(pushed: 4, applied: 5)) {
            _ = try await core.pushConfig(Self.push(4, []))
        }
        #expect(try await core.pushConfig(Self.push(6, [])).appliedRevision == 6)
        #expect(await core.state.amneziaWGPeers.isEmpty)
    }

    @Test func invalidPushAppliesNothing() async throws {
        _ = try await core.pushConfig(Self.push(1, [Self.peer("a", ip: "10.86.0.2/32")]))
        var bad = Self.peer("b", ip: "10.86.0.3/32")
        bad.publicKey = "not-a-key"
        await #expect(throws: NodeAgentCore.Failure.self) {
            _ = try await core.pushConfig(Self.push(2, [Self.peer("c", ip: "10.86.0.4/32"), bad]))
        }
        #expect(await core.state.amneziaWGRevision == 1)
        #expect(await core.state.amneziaWGPeers.map(\.id) == ["a"])
    }

    @Test func addPeerUpsertsAndRemovePeerIsIdempotent() async throws {
        let key = Support.key()
        _ = try await core.addPeer(Self.peer("a", key: key, ip: "10.86.0.2/32"))
        let updated = try await core.addPeer(Self.peer("a2", key: key, ip: "10.86.0.9/32"))
        #expect(updated.applied && updated.peerID == "a2")
        let peers = await core.state.amneziaWGPeers
        #expect(peers.count == 1 && peers[0].allowedIPs == ["10.86.0.9/32"])

        var remove = Pharos_Node_V1_RemovePeerRequest()
        remove.protocol = .amneziawg
        remove.publicKey = key
        #expect(try await core.removePeer(remove).applied)
        #expect(try await core.removePeer(remove).applied, "removing a missing peer still answers applied")
        #expect(await core.state.amneziaWGPeers.isEmpty)
    }

    @Test func listPeersFiltersByProtocol() async throws {
        _ = try await core.addPeer(Self.peer("a", ip: "10.86.0.2/32"))
        var all = Pharos_Node_V1_ListPeersRequest()
        #expect(await core.listPeers(all).peers.count == 1)
        all.protocol = .xrayReality
        #expect(await core.listPeers(all).peers.isEmpty)
    }

    @Test func stateSurvivesARestart() async throws {
        _ = try await core.pushConfig(Self.push(3, [Self.peer("a", ip: "10.86.0.2/32"), Self.peer("b", ip: "10.86.0.3/32")]))
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
        _ = try await core.pushConfig(Self.push(2, [Self.peer("a", ip: "10.86.0.2/32")]))
        let status = await core.status(agentVersion: "node test")
        #expect(status.appliedRevision == 2)
        #expect(status.amneziawg.publicKey == core.identity.publicKey)
        #expect(status.amneziawg.obfuscation.h1 == core.identity.obfuscation.h1)
        #expect(status.services.first?.peerCount == 1)
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
            DataPlaneStatus(running: true, listening: true, listenPort: 0, peers: [], detail: name)
        }
        func stop() async {}
    }

    @Test func olderRevisionArrivingDuringANewerApplyIsRefused() async throws {
        let dir = try Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let plane = SlowPlane()
        let core = try NodeAgentCore(dataPlane: plane, identity: .generate(), statePath: "\(dir)/state.json", logger: Support.logger)
        let newer = Task { try await core.pushConfig(NodeAgentCoreTests.push(6, [NodeAgentCoreTests.peer("six", ip: "10.86.0.6/32")])) }
        try await Task.sleep(for: .milliseconds(50))
        let older = Task { try await core.pushConfig(NodeAgentCoreTests.push(5, [NodeAgentCoreTests.peer("five", ip: "10.86.0.5/32")])) }
        #expect(try await newer.value.appliedRevision == 6)
        await #expect(throws: NodeAgentCore.Failure.staleRevision(pushed: 5, applied: 6)) { _ = try await older.value }
        #expect(plane.lock.withLock { plane.applied } == [["six"]])
        #expect(await core.state.amneziaWGPeers.map(\.id) == ["six"])
    }
}
