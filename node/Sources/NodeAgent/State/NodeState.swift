import Foundation

/// Everything the controller made this node apply, persisted at every change so a
/// node restarted while the controller is away serves every peer it had.
public struct NodeState: Sendable, Equatable, Codable {
    /// Revision of the last applied AmneziaWG PushConfig; 0 = none.
    public var amneziaWGRevision: Int64 = 0
    public var amneziaWGPeers: [PeerSpec] = []

    public init() {}

    enum CodingKeys: String, CodingKey {
        case amneziaWGRevision = "amneziawg_revision"
        case amneziaWGPeers = "amneziawg_peers"
    }

    public static func load(from path: String) throws -> NodeState {
        guard let bytes = try AtomicFile.read(path) else { return NodeState() }
        do {
            return try JSONDecoder().decode(NodeState.self, from: Data(bytes))
        } catch {
            throw NodeStateError.corrupt(path: path, reason: "\(error)")
        }
    }

    public func save(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try AtomicFile.write(Array(try encoder.encode(self)), to: path, mode: 0o600)
    }
}

public enum NodeStateError: Error, CustomStringConvertible {
    case corrupt(path: String, reason: String)

    public var description: String {
        switch self {
        case .corrupt(let path, let reason):
            "\(path) cannot be read (\(reason)); the node will not start with unknown state. Restore it from a backup, or remove it to start empty and let the controller push again"
        }
    }
}
