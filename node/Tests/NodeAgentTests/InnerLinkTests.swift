import Foundation
import PharosSpec
import PharosWireGuard
import Synchronization
import Testing
@testable import NodeAgent

/// ConfigureInnerLink/RemoveInnerLink on domain values: the per-link revision fence,
/// validation before anything is applied, the exit swapped in place when only it changed,
/// persistence and cold-start restore. The planes are recording in-memory ones (a unit test
/// of the core); DataPlaneIntegrationTests carries packets through real ones.
@Suite final class InnerLinkTests {
    /// What the core did to its inner-link planes, in order.
    final class Recorder: Sendable {
        let events = Mutex<[String]>([])
        func record(_ event: String) { events.withLock { $0.append(event) } }
        var all: [String] { events.withLock { $0 } }
    }

    final class RecordingPlane: DataPlane {
        let name = "recording"
        let speaksObfuscation = true
        let interface: String
        let recorder: Recorder
        let inner = InMemoryDataPlane()

        init(_ interface: String, _ recorder: Recorder) {
            self.interface = interface
            self.recorder = recorder
        }

        func start(identity: AmneziaWGIdentity, peers: [PeerSpec]) async throws {
            recorder.record("start \(interface) h1=\(identity.obfuscation.h1) peers=\(peers.map(\.id))")
            try await inner.start(identity: identity, peers: peers)
        }
        func replacePeers(_ peers: [PeerSpec], previous: [PeerSpec]) async throws {
            recorder.record("replace \(interface) \(previous.map(\.id)) -> \(peers.map(\.id))")
        }
        func upsertPeer(_ peer: PeerSpec, previous: PeerSpec?) async throws {}
        func removePeer(_ peer: PeerSpec) async throws {}
        func status() async throws -> DataPlaneStatus { try await inner.status() }
        func stop() async { recorder.record("stop \(interface)") }
    }

    let dir: String
    let identity = AmneziaWGIdentity.generate()
    let recorder = Recorder()
    let exitSet = Obfuscation.generate()

    init() throws { dir = try Support.temporaryDirectory() }
    deinit { try? FileManager.default.removeItem(atPath: dir) }

    func core() throws -> NodeAgentCore {
        let recorder = self.recorder
        return try NodeAgentCore(dataPlane: InMemoryDataPlane(), identity: identity, statePath: "\(dir)/state.json", logger: Support.logger,
                                 innerLinks: { RecordingPlane($0.interface, recorder) }, mainInterface: ("awg0", 51820))
    }

    func link(_ revision: Int64, interface: String = "awg1", port: Int = 51821, exitID: String = "exit-b",
              endpoint: String? = "203.0.113.2:51820", mtu: Int = 0, obfuscation: Obfuscation?? = .none) -> InnerLink {
        InnerLink(interface: interface, listenPort: port, mtu: mtu, peerObfuscation: obfuscation ?? exitSet,
                  exit: PeerSpec(id: exitID, publicKey: Support.key(), allowedIPs: ["0.0.0.0/0"], endpoint: endpoint), revision: revision)
    }

    @Test func aLinkIsFencedAppliedPersistedAndRestored() async throws {
        let core = try core()
        #expect(try await core.configureInnerLink(link(3)).reloaded)
        #expect(recorder.all == ["start awg1 h1=\(exitSet.h1) peers=[\"exit-b\"]"], "the link speaks the exit's set, not the node's")
        #expect(try await core.configureInnerLink(link(3, exitID: "other")) == NodeAgentCore.PushOutcome(appliedRevision: 3, reloaded: false))
        await #expect(throws: NodeAgentCore.Failure.staleRevision(pushed: 2, applied: 3)) { _ = try await core.configureInnerLink(link(2)) }
        #expect(await core.state.innerLinks.map(\.exit.id) == ["exit-b"])
        #expect(recorder.all.count == 1)

        let onDisk = try NodeStateStore(snapshotPath: "\(dir)/state.json").load()
        #expect(onDisk.innerLinks == (await core.state.innerLinks))
        let restarted = try self.core()
        try await restarted.restore()
        #expect(recorder.all.last == "start awg1 h1=\(exitSet.h1) peers=[\"exit-b\"]", "a cold start brings the link back")
    }

    @Test func aNewExitIsSwappedInPlaceAndANewPortRestartsTheLink() async throws {
        let core = try core()
        _ = try await core.configureInnerLink(link(1))
        _ = try await core.configureInnerLink(link(2, exitID: "exit-c", endpoint: "203.0.113.3:51820"))
        #expect(recorder.all.last == "replace awg1 [\"exit-b\"] -> [\"exit-c\"]")
        _ = try await core.configureInnerLink(link(3, port: 51900, exitID: "exit-c"))
        #expect(Array(recorder.all.suffix(2)) == ["stop awg1", "start awg1 h1=\(exitSet.h1) peers=[\"exit-c\"]"])
        #expect(await core.state.innerLinks.map(\.listenPort) == [51900])
    }

    @Test(arguments: [
        ("the node's own interface", "awg0", 51821, "203.0.113.2:51820", 0, true, "interface awg0 is the node's own tunnel"),
        ("the node's own port", "awg1", 51820, "203.0.113.2:51820", 0, true, "listen_port 51820 is the node's own tunnel port"),
        ("another link's port", "awg1", 51830, "203.0.113.2:51820", 0, true, "listen_port 51830 is already used by the inner link awg9"),
        ("no endpoint", "awg1", 51821, nil, 0, true, "exit peer \"exit-b\" has no endpoint"),
        ("a host name endpoint", "awg1", 51821, "exit.example.com:51820", 0, true, "is not an IP:port"),
        ("a tiny MTU", "awg1", 51821, "203.0.113.2:51820", 1000, true, "mtu 1000 is outside 1280-9000"),
        ("no obfuscation set", "awg1", 51821, "203.0.113.2:51820", 0, false, "peer_obfuscation is required"),
        ("a hostile interface name", "awg1;reboot", 51821, "203.0.113.2:51820", 0, true, "is not 1-15 letters"),
    ] as [(String, String, Int, String?, Int, Bool, String)])
    func anInvalidLinkChangesNothing(_ name: String, _ interface: String, _ port: Int, _ endpoint: String?, _ mtu: Int,
                                     _ withSet: Bool, _ reason: String) async throws {
        let core = try core()
        _ = try await core.configureInnerLink(link(1, interface: "awg9", port: 51830))
        let before = (await core.state, recorder.all)
        do {
            _ = try await core.configureInnerLink(link(1, interface: interface, port: port, endpoint: endpoint, mtu: mtu,
                                                       obfuscation: withSet ? .none : .some(nil)))
            Issue.record("\(name) was accepted")
        } catch {
            guard case .invalidConfig(let text) = error else { Issue.record("\(name): \(error)"); return }
            #expect(text.contains(reason), "\(name): \(text)")
        }
        #expect(await core.state == before.0, "\(name) changed the state")
        #expect(recorder.all == before.1, "\(name) touched a plane")
    }

    @Test func removingStopsTheLinkAndForgetsIt() async throws {
        let core = try core()
        _ = try await core.configureInnerLink(link(1))
        #expect(try await core.removeInnerLink(interface: "awg1"))
        #expect(recorder.all.last == "stop awg1")
        #expect(await core.state.innerLinks.isEmpty)
        #expect(try NodeStateStore(snapshotPath: "\(dir)/state.json").load().innerLinks.isEmpty)
        #expect(try await core.removeInnerLink(interface: "awg1") == false)
        // Removed, a link may come back at any revision.
        #expect(try await core.configureInnerLink(link(1)).reloaded)
    }

    @Test func theBenchmarkPlaneServesNoInnerLinks() async throws {
        let core = try NodeAgentCore(dataPlane: InMemoryDataPlane(), identity: identity, statePath: "\(dir)/bench.json", logger: Support.logger)
        await #expect(throws: NodeAgentCore.Failure.unsupportedProtocol("the in-memory benchmark data plane does not serve inner links")) {
            _ = try await core.configureInnerLink(link(1))
        }
    }
}
