import PharosWireGuard
import Synchronization

/// BENCHMARK TOOL ONLY: keeps peers in memory and moves no packets. It lets one
/// process host many simulated nodes, each speaking real mTLS NodeControl, for the
/// controller's scale benchmarks. Never a default; `dataplane.backend: memory` must
/// be chosen explicitly, and GetStatus says what it is.
public final class InMemoryDataPlane: DataPlane {
    public let name = "memory (benchmark tool: no packets move)"
    public let speaksObfuscation = true
    private let peers = Mutex<[String: PeerSpec]>([:])
    private let up = Mutex(false)

    public init() {}

    public func start(identity: AmneziaWGIdentity, peers: [PeerSpec]) async throws {
        self.peers.withLock { $0 = Dictionary(peers.map { ($0.publicKey, $0) }, uniquingKeysWith: { _, b in b }) }
        up.withLock { $0 = true }
    }

    public func replacePeers(_ peers: [PeerSpec], previous: [PeerSpec]) async throws {
        self.peers.withLock { $0 = Dictionary(peers.map { ($0.publicKey, $0) }, uniquingKeysWith: { _, b in b }) }
    }

    public func upsertPeer(_ peer: PeerSpec, previous: PeerSpec?) async throws {
        peers.withLock { $0[peer.publicKey] = peer }
    }

    public func removePeer(_ peer: PeerSpec) async throws {
        _ = peers.withLock { $0.removeValue(forKey: peer.publicKey) }
    }

    public func status() async throws -> DataPlaneStatus {
        let running = up.withLock { $0 }
        let list = peers.withLock { Array($0.values) }
        return DataPlaneStatus(running: running, listening: false,
                               peers: list.compactMap { WireGuardKey.hex(fromBase64: $0.publicKey).map(UAPI.PeerStatus.init) },
                               detail: name)
    }

    public func stop() async {
        up.withLock { $0 = false }
    }
}
