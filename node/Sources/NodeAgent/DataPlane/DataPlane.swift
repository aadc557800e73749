import PharosWireGuard

/// What the node agent needs from a data plane. `UserspaceWireGuard` is the real
/// one; `InMemoryDataPlane` exists only for the controller's scale benchmarks.
public protocol DataPlane: Sendable {
    /// e.g. "amneziawg-go", "wireguard-go", "memory (benchmark only)".
    var name: String { get }
    /// Whether the obfuscation set is applied (plain WireGuard cannot speak it).
    var speaksObfuscation: Bool { get }

    /// Brings the interface up with the node identity and exactly `peers`.
    func start(identity: AmneziaWGIdentity, peers: [PeerSpec]) async throws
    /// Atomically replaces the whole peer set.
    func replacePeers(_ peers: [PeerSpec], previous: [PeerSpec]) async throws
    /// Adds or updates one peer.
    func upsertPeer(_ peer: PeerSpec, previous: PeerSpec?) async throws
    func removePeer(_ peer: PeerSpec) async throws
    func status() async throws -> DataPlaneStatus
    /// Stops the daemon this agent started (an adopted one keeps running: an agent restart
    /// must not drop tunnels).
    func stop() async
    /// Stops it and removes the interface, adopted or not (RemoveInnerLink).
    func destroy() async
}

extension DataPlane {
    public func destroy() async { await stop() }
}

public struct DataPlaneStatus: Sendable, Equatable {
    public var running: Bool
    public var listening: Bool
    public var peers: [UAPI.PeerStatus]
    public var detail: String

    public init(running: Bool, listening: Bool, peers: [UAPI.PeerStatus], detail: String) {
        self.running = running
        self.listening = listening
        self.peers = peers
        self.detail = detail
    }
}

public enum DataPlaneError: Error, Equatable, CustomStringConvertible {
    case daemon(reason: String)
    case command(argv: [String], status: Int32, output: String)

    public var description: String {
        switch self {
        case .daemon(let reason): "data-plane daemon: \(reason)"
        case .command(let argv, let status, let output): "\(argv.joined(separator: " ")) exited \(status): \(output)"
        }
    }
}
