import PharosRuntime
import Foundation

/// Everything the controller made this node apply, persisted at every change so a
/// node restarted while the controller is away serves every peer it had.
public struct NodeState: Sendable, Equatable, Codable {
    /// Revision of the last applied AmneziaWG PushConfig; 0 = none.
    public var amneziaWGRevision: Int64 = 0
    public var amneziaWGPeers: [PeerSpec] = []
    /// Bumped by every snapshot; journal entries of an older generation are ignored.
    public var generation: Int64 = 0
    /// Revision of the last applied XRay/REALITY PushConfig; 0 = none.
    public var xrayRevision: Int64 = 0
    public var xray = XRayServerConfig()
    /// Cascade hops (ConfigureInnerLink), each with its own revision.
    public var innerLinks: [InnerLink] = []

    public init() {}

    enum CodingKeys: String, CodingKey {
        case amneziaWGRevision = "amneziawg_revision"
        case amneziaWGPeers = "amneziawg_peers"
        case generation
        case xrayRevision = "xray_revision"
        case xray
        case innerLinks = "inner_links"
    }

    /// Every field is optional on read, so older snapshots still load.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        amneziaWGRevision = try c.decodeIfPresent(Int64.self, forKey: .amneziaWGRevision) ?? 0
        amneziaWGPeers = try c.decodeIfPresent([PeerSpec].self, forKey: .amneziaWGPeers) ?? []
        generation = try c.decodeIfPresent(Int64.self, forKey: .generation) ?? 0
        xrayRevision = try c.decodeIfPresent(Int64.self, forKey: .xrayRevision) ?? 0
        xray = try c.decodeIfPresent(XRayServerConfig.self, forKey: .xray) ?? XRayServerConfig()
        innerLinks = try c.decodeIfPresent([InnerLink].self, forKey: .innerLinks) ?? []
    }

    mutating func apply(_ entry: NodeStateJournal.Entry) {
        switch entry.operation {
        case .upsert:
            guard let peer = entry.peer else { return }
            amneziaWGPeers.removeAll { $0.publicKey == peer.publicKey }
            amneziaWGPeers.append(peer)
        case .remove:
            amneziaWGPeers.removeAll { $0.publicKey == entry.publicKey }
        }
    }
}

/// Persists `NodeState` as a snapshot (`state.json`, replaced atomically) plus an
/// append-only journal of single-peer changes (`state.journal`, fsynced per entry),
/// so AddPeer/RemovePeer cost one small write instead of rewriting every peer.
public final class NodeStateStore: @unchecked Sendable {
    public let snapshotPath: String
    public let journalPath: String
    /// Journal entries after which the next change writes a fresh snapshot.
    public var compactAfter = 1000
    private var journalEntries = 0
    private var journal: FileHandle?

    public init(snapshotPath: String) {
        self.snapshotPath = snapshotPath
        self.journalPath = (snapshotPath as NSString).deletingPathExtension + ".journal"
    }

    deinit { try? journal?.close() }

    public func load() throws -> NodeState {
        var state = NodeState()
        if let bytes = try AtomicFile.read(snapshotPath) {
            do { state = try JSONDecoder().decode(NodeState.self, from: Data(bytes)) } catch {
                throw NodeStateError.corrupt(path: snapshotPath, reason: "\(error)")
            }
        }
        if let bytes = try AtomicFile.read(journalPath) {
            let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true)
            for (index, line) in lines.enumerated() {
                guard let entry = try? JSONDecoder().decode(NodeStateJournal.Entry.self, from: Data(line)) else {
                    // Only the last line may be torn (a crash mid-append); anything else is corruption.
                    if index == lines.count - 1 { break }
                    throw NodeStateError.corrupt(path: journalPath, reason: "line \(index + 1) is not a journal entry")
                }
                if entry.generation == state.generation { state.apply(entry) }
            }
            journalEntries = lines.count
        }
        return state
    }

    /// Replaces everything: a new snapshot generation, and the journal starts over.
    public func saveSnapshot(_ state: inout NodeState) throws {
        state.generation += 1
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try AtomicFile.write(Array(try encoder.encode(state)), to: snapshotPath, mode: 0o600)
        try? journal?.close()
        journal = nil
        unlink(journalPath)
        journalEntries = 0
    }

    /// Records one change; compacts into a snapshot every `compactAfter` entries.
    public func append(_ entry: NodeStateJournal.Entry, resulting state: inout NodeState) throws {
        if journalEntries >= compactAfter {
            try saveSnapshot(&state)
            return
        }
        if journal == nil {
            let fd = open(journalPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw AtomicFileError.failed(path: journalPath, step: "open", errno: errno) }
            journal = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        }
        var line = try JSONEncoder().encode(entry)
        line.append(UInt8(ascii: "\n"))
        try journal!.write(contentsOf: line)
        try journal!.synchronize()
        journalEntries += 1
    }
}

public enum NodeStateJournal {
    public struct Entry: Sendable, Equatable, Codable {
        public enum Operation: String, Sendable, Codable { case upsert, remove }

        public var generation: Int64
        public var operation: Operation
        public var peer: PeerSpec?
        public var publicKey: String?

        enum CodingKeys: String, CodingKey {
            case generation = "gen"
            case operation = "op"
            case peer
            case publicKey = "public_key"
        }

        public static func upsert(_ peer: PeerSpec, generation: Int64) -> Entry {
            Entry(generation: generation, operation: .upsert, peer: peer, publicKey: nil)
        }

        public static func remove(publicKey: String, generation: Int64) -> Entry {
            Entry(generation: generation, operation: .remove, peer: nil, publicKey: publicKey)
        }
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
