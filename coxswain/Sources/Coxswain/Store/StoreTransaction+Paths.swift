import Foundation

/// A named cascade: 2 or 3 node IDs, entry first.
public struct PathRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    public var hops: [String]
    /// `#rrggbb`, or empty.
    public var color: String = ""
    public var createdAt: Int64

    public init(id: String, name: String, hops: [String], color: String = "", createdAt: Int64) {
        (self.id, self.name, self.hops, self.color, self.createdAt) = (id, name, hops, color, createdAt)
    }

    /// The inner links of `all` this path crosses, entry first.
    public func links(in all: [NodeLinkRecord]) -> [NodeLinkRecord] {
        zip(hops, hops.dropFirst()).compactMap { pair in all.first { $0.entryNodeID == pair.0 && $0.exitNodeID == pair.1 } }
    }
}

/// The inner link from `entryNodeID` to `exitNodeID` (one per pair, shared by every path
/// that makes this hop): the interface, port, fwmark and table the entry uses for it.
public struct NodeLinkRecord: Sendable, Equatable, Codable, SQLRecord {
    public static let tableName = "node_links"

    public var id: String
    public var entryNodeID: String
    public var exitNodeID: String
    public var innerInterface: String
    public var listenPort: Int
    public var fwmark: Int
    public var tableID: Int
    public var createdAt: Int64

    enum CodingKeys: String, CodingKey {
        case id
        case entryNodeID = "entry_node_id", exitNodeID = "exit_node_id", innerInterface = "inner_interface"
        case listenPort = "listen_port", fwmark, tableID = "table_id", createdAt = "created_at"
    }
}

/// What one node does in the fleet's cascades, read in the transaction its push plan is.
public struct CascadeView: Sendable {
    /// Links this node is the entry (or mid) side of, with the next hop and the device
    /// addresses (`a.b.c.d/32`) routed into each.
    public var outgoing: [(link: NodeLinkRecord, next: NodeRecord, devices: [String])]
    /// Links this node is the far side of, with the previous hop and the addresses it carries.
    public var incoming: [(link: NodeLinkRecord, previous: NodeRecord, devices: [String])]
    /// Inner interfaces this node still serves that no path uses any more.
    public var retired: [String]
}

extension StoreTransaction {
    public func insert(path: PathRecord) throws {
        if try sql.count("SELECT COUNT(*) FROM paths WHERE name = ?", [path.name]) > 0 {
            throw StoreError.duplicate(kind: "path", field: "name", value: path.name)
        }
        try sql.execute("INSERT INTO paths (id, name, color, created_at) VALUES (?, ?, ?, ?)",
                        [path.id, path.name, path.color, path.createdAt])
        for (index, node) in path.hops.enumerated() {
            try sql.execute("INSERT INTO path_hops (path_id, hop_index, node_id) VALUES (?, ?, ?)",
                            [path.id, index, node])
        }
    }

    public func paths() throws -> [PathRecord] {
        let hops = try sql.rows("SELECT path_id, node_id FROM path_hops ORDER BY path_id, hop_index")
        var byPath: [String: [String]] = [:]
        for row in hops { byPath[row["path_id"], default: []].append(row["node_id"]) }
        return try sql.rows("SELECT id, name, color, created_at FROM paths ORDER BY name").map {
            PathRecord(id: $0["id"], name: $0["name"], hops: byPath[$0["id"]] ?? [], color: $0["color"], createdAt: $0["created_at"])
        }
    }

    /// By ID or by name.
    public func path(_ reference: String) throws -> PathRecord {
        guard let found = try paths().first(where: { $0.id == reference || $0.name == reference }) else {
            throw StoreError.notFound(kind: "path", id: reference)
        }
        return found
    }

    public func setPathColor(_ pathID: String, _ color: String) throws {
        try sql.execute("UPDATE paths SET color = ? WHERE id = ?", [color, pathID])
    }

    public func deletePath(_ pathID: String) throws {
        try sql.execute("DELETE FROM paths WHERE id = ?", [pathID])
    }

    public func profileSpecs(path pathID: String) throws -> [ProfileSpecRecord] {
        try sql.all(ProfileSpecRecord.self, where: "path_id = ?", [pathID], orderBy: "created_at, id")
    }

    public func nodeLinks() throws -> [NodeLinkRecord] {
        try sql.all(NodeLinkRecord.self, orderBy: "entry_node_id, inner_interface")
    }

    /// The link from `entry` to `exit`, allocated when there is none: the fleet's next free
    /// `awgN` (N from 1), port 51900+N, fwmark 0x5000+N and table 5000+N. N is unique in the
    /// fleet, not only at the entry: a name then means one link everywhere, and nodes sharing
    /// a host (a demo, the e2e fleet) never meet over wireguard-go's one socket directory.
    public func ensureLink(entry: String, exit: String) throws -> NodeLinkRecord {
        if let link = try sql.first(NodeLinkRecord.self, where: "entry_node_id = ? AND exit_node_id = ?", [entry, exit]) {
            return link
        }
        let taken = Set(try sql.values(String.self, """
            SELECT inner_interface FROM node_links UNION SELECT inner_interface FROM retired_links
            """))
        let n = (1...).first { !taken.contains("awg\($0)") }!
        guard 51900 + n <= 65535 else { throw StoreError.constraint("no inner link port is free (51900+N would pass 65535)") }
        let link = NodeLinkRecord(id: EntityID.make(.nodeLink), entryNodeID: entry, exitNodeID: exit, innerInterface: "awg\(n)",
                                  listenPort: 51900 + n, fwmark: 0x5000 + n, tableID: 5000 + n, createdAt: now)
        try sql.insert(link)
        return link
    }

    /// Deletes the links no path uses any more; their entries are told to remove them
    /// (`retired_links`). Returns the entry nodes concerned.
    public func retireUnusedLinks() throws -> Set<String> {
        let used = Set(try paths().flatMap { path in zip(path.hops, path.hops.dropFirst()).map { "\($0.0)>\($0.1)" } })
        var entries = Set<String>()
        for link in try nodeLinks() where !used.contains("\(link.entryNodeID)>\(link.exitNodeID)") {
            try sql.delete(NodeLinkRecord.self, key: link.id)
            try sql.execute("""
                INSERT INTO retired_links (entry_node_id, inner_interface) VALUES (?, ?)
                ON CONFLICT (entry_node_id, inner_interface) DO NOTHING
                """, [link.entryNodeID, link.innerInterface])
            entries.insert(link.entryNodeID)
        }
        return entries
    }

    /// The entry told its retired link is gone: forget it (its name may be allocated again).
    public func forgetRetiredLink(entry: String, interface: String) throws {
        try sql.execute("DELETE FROM retired_links WHERE entry_node_id = ? AND inner_interface = ?", [entry, interface])
    }

    /// Every node that shares a path with one of `nodeIDs`: a change to a device's peer on an
    /// entry changes what the next hops carry for it.
    public func pathPartners(of nodeIDs: Set<String>) throws -> Set<String> {
        guard !nodeIDs.isEmpty else { return [] }
        var partners = Set<String>()
        for path in try paths() where !Set(path.hops).isDisjoint(with: nodeIDs) { partners.formUnion(path.hops) }
        return partners.subtracting(nodeIDs)
    }

    /// This node's part in the cascades (see `CascadeView`).
    public func cascade(for nodeID: String) throws -> CascadeView {
        let links = try nodeLinks()
        let retiredCount = try sql.count("SELECT COUNT(*) FROM retired_links WHERE entry_node_id = ?", [nodeID])
        guard retiredCount > 0 || links.contains(where: { $0.entryNodeID == nodeID || $0.exitNodeID == nodeID }) else {
            return CascadeView(outgoing: [], incoming: [], retired: [])
        }
        let paths = try paths()
        // Device addresses per path: the peers its specs placed on the path's entry.
        var devicesByPath: [String: [String]] = [:]
        for path in paths {
            guard let entry = path.hops.first else { continue }
            // A device bound to a path entering where its peer is (`device_exits`) follows that
            // path there instead of its profile's.
            devicesByPath[path.id] = try sql.values(String.self, """
                SELECT DISTINCT p.allowed_ip FROM peers p JOIN profile_specs s ON p.profile_spec_id = s.id
                LEFT JOIN device_exits x ON x.device_id = p.device_id
                    AND x.path_id IN (SELECT path_id FROM path_hops WHERE hop_index = 0 AND node_id = p.node_id)
                WHERE COALESCE(x.path_id, s.path_id) = ? AND p.node_id = ? AND p.protocol = 'amneziawg' ORDER BY p.allowed_ip
                """, [path.id, entry])
        }
        func devices(_ link: NodeLinkRecord) -> [String] {
            var all = Set<String>()
            for path in paths where zip(path.hops, path.hops.dropFirst()).contains(where: { $0.0 == link.entryNodeID && $0.1 == link.exitNodeID }) {
                all.formUnion(devicesByPath[path.id] ?? [])
            }
            return all.sorted()
        }
        var view = CascadeView(outgoing: [], incoming: [], retired: [])
        for link in links where link.entryNodeID == nodeID {
            view.outgoing.append((link, try node(link.exitNodeID), devices(link)))
        }
        for link in links where link.exitNodeID == nodeID {
            view.incoming.append((link, try node(link.entryNodeID), devices(link)))
        }
        view.retired = try sql.values(String.self, "SELECT inner_interface FROM retired_links WHERE entry_node_id = ? ORDER BY inner_interface",
                                      [nodeID])
        return view
    }
}

extension StoreTransaction {
    /// Bumps the revision of each of `nodeIDs` and of every node that shares a path with one
    /// of them (what a device's peer on an entry changes reaches its next hops); returns them all.
    public func bumpRevisions(_ nodeIDs: Set<String>) throws -> Set<String> {
        let all = nodeIDs.union(try pathPartners(of: nodeIDs))
        for id in all { try bumpRevision(node: id) }
        return all
    }

    /// The paths `nodeID` is a hop of, by name.
    public func pathNames(through nodeID: String) throws -> [String] {
        try sql.values(String.self, """
            SELECT DISTINCT p.name FROM paths p JOIN path_hops h ON h.path_id = p.id WHERE h.node_id = ? ORDER BY p.name
            """, [nodeID])
    }
}

/// A device's live exit (`cox paths bind`): the path its AmneziaWG traffic takes from the
/// path's entry on, in place of what its profile there says.
public struct ExitBinding: Sendable, Equatable {
    public var deviceID: String
    public var pathID: String
    public var createdAt: Int64
}

extension StoreTransaction {
    /// Binds `deviceID` to `pathID`, replacing the binding it had.
    public func bindExit(device deviceID: String, path pathID: String) throws {
        try sql.execute("""
            INSERT INTO device_exits (device_id, path_id, created_at) VALUES (?, ?, ?)
            ON CONFLICT (device_id) DO UPDATE SET path_id = excluded.path_id, created_at = excluded.created_at
            """, [deviceID, pathID, now])
    }

    /// Returns whether there was a binding to remove.
    public func unbindExit(device deviceID: String) throws -> Bool {
        try sql.execute("DELETE FROM device_exits WHERE device_id = ?", [deviceID]) > 0
    }

    public func exitBinding(device deviceID: String) throws -> ExitBinding? {
        try sql.row("SELECT device_id, path_id, created_at FROM device_exits WHERE device_id = ?", [deviceID])
            .map { ExitBinding(deviceID: $0["device_id"], pathID: $0["path_id"], createdAt: $0["created_at"]) }
    }

    /// Every binding, or those to `pathID`, oldest first.
    public func exitBindings(path pathID: String? = nil) throws -> [ExitBinding] {
        let rows: [SQLRow]
        if let pathID {
            rows = try sql.rows("""
                SELECT device_id, path_id, created_at FROM device_exits WHERE path_id = ? ORDER BY created_at, device_id
                """, [pathID])
        } else {
            rows = try sql.rows("SELECT device_id, path_id, created_at FROM device_exits ORDER BY created_at, device_id")
        }
        return rows.map { ExitBinding(deviceID: $0["device_id"], pathID: $0["path_id"], createdAt: $0["created_at"]) }
    }
}
