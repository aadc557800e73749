import Foundation

/// Read models of the admin API and UI: lists that page and filter, and the per-node
/// figures of the fleet overview, each in a few grouped queries rather than one per row.
public struct NodeQuery: Sendable {
    /// Only these nodes.
    public var ids: [String]?
    public var status: NodeStatus?
    public var region: String?
    /// Substring of the name or control address.
    public var search: String?
    public var limit: Int
    public var offset: Int

    public init(ids: [String]? = nil, status: NodeStatus? = nil, region: String? = nil, search: String? = nil,
                limit: Int = 100, offset: Int = 0) {
        self.ids = ids
        self.status = status
        self.region = region
        self.search = search
        self.limit = min(max(limit, 1), 1000)
        self.offset = max(offset, 0)
    }
}

/// A node with what the overview shows beside it.
public struct NodeOverview: Sendable, Equatable {
    public var node: NodeRecord
    public var peers: Int
    /// The newest connect or handshake any of its peers reported (µs), if any.
    public var lastHandshakeAt: Int64?
}

/// Filters of `GET /api/sessions`: the connection history, newest first, or only the
/// sessions still open (a connect with no later disconnect for that peer on that node).
public struct SessionQuery: Sendable {
    public var nodeID: String?
    public var deviceID: String?
    public var userID: String?
    public var openOnly: Bool
    public var limit: Int
    public var offset: Int

    public init(nodeID: String? = nil, deviceID: String? = nil, userID: String? = nil, openOnly: Bool = false,
                limit: Int = 100, offset: Int = 0) {
        self.nodeID = nodeID
        self.deviceID = deviceID
        self.userID = userID
        self.openOnly = openOnly
        self.limit = min(max(limit, 1), 1000)
        self.offset = max(offset, 0)
    }
}

extension StoreTransaction {
    public func nodeOverviews(_ query: NodeQuery) throws -> (items: [NodeOverview], total: Int) {
        var conditions: [String] = []
        var arguments: [(any SQLBindable)?] = []
        if let ids = query.ids {
            if ids.isEmpty {
                conditions.append("1 = 0")
            } else {
                conditions.append("id IN (\(Array(repeating: "?", count: ids.count).joined(separator: ", ")))")
                arguments += ids.map { $0 as (any SQLBindable)? }
            }
        }
        if let status = query.status { conditions.append("status = ?"); arguments.append(status.rawValue) }
        if let region = query.region { conditions.append("region = ?"); arguments.append(region) }
        if let search = query.search, !search.isEmpty {
            // `\` escapes in PostgreSQL's LIKE by default, in SQLite's not at all: naming it the
            // escape in both and doubling it keeps a backslash in the search literal on both.
            let pattern = "%" + SQLPattern.asciiLowercased(SQLPattern.escaped(search)) + "%"
            conditions.append("(LOWER(name) LIKE ? ESCAPE '\\' OR LOWER(control_addr) LIKE ? ESCAPE '\\')")
            arguments += [pattern, pattern]
        }
        let whereClause = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        let total = try sql.count("SELECT COUNT(*) FROM nodes\(whereClause)", arguments)
        let nodes = try sql.records(NodeRecord.self, "SELECT * FROM nodes\(whereClause) ORDER BY name LIMIT ? OFFSET ?",
                                    arguments + [query.limit, query.offset])
        guard !nodes.isEmpty else { return ([], total) }
        let ids = nodes.map(\.id)
        let marks = Array(repeating: "?", count: ids.count).joined(separator: ", ")
        let idArguments = ids.map { $0 as (any SQLBindable)? }
        var peers: [String: Int] = [:]
        for row in try sql.rows("SELECT node_id, COUNT(*) AS n FROM peers WHERE node_id IN (\(marks)) GROUP BY node_id", idArguments) {
            peers[row["node_id"]] = row["n"]
        }
        var handshakes: [String: Int64] = [:]
        for row in try sql.rows("""
            SELECT node_id, MAX(at) AS at FROM connection_events
            WHERE node_id IN (\(marks)) AND event_type IN ('connect', 'handshake') GROUP BY node_id
            """, idArguments) {
            handshakes[row["node_id"]] = row["at"]
        }
        return (nodes.map { NodeOverview(node: $0, peers: peers[$0.id] ?? 0, lastHandshakeAt: handshakes[$0.id]) }, total)
    }

    public func nodeCounts() throws -> [NodeStatus: Int] {
        var counts: [NodeStatus: Int] = [:]
        for row in try sql.rows("SELECT status, COUNT(*) AS n FROM nodes GROUP BY status") {
            if let status = NodeStatus(rawValue: row["status"]) { counts[status] = row["n"] }
        }
        return counts
    }

    /// Nodes whose applied revision is behind the one the store intends.
    public func nodesBehindCount() throws -> Int {
        try sql.count("SELECT COUNT(*) FROM nodes WHERE applied_revision < config_revision AND status != 'stopped'")
    }

    public func deviceCounts() throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try sql.rows("SELECT user_id, COUNT(*) AS n FROM devices GROUP BY user_id") { counts[row["user_id"]] = row["n"] }
        return counts
    }

    public func count(of table: String) throws -> Int {
        precondition(["nodes", "users", "devices", "profile_specs", "peers", "relays", "audit_log", "connection_events"].contains(table))
        return try sql.count("SELECT COUNT(*) FROM \(table)")
    }

    public func sessions(_ query: SessionQuery) throws -> (items: [ConnectionEventRecord], total: Int) {
        var conditions: [String] = []
        var arguments: [(any SQLBindable)?] = []
        if let nodeID = query.nodeID { conditions.append("e.node_id = ?"); arguments.append(nodeID) }
        if let deviceID = query.deviceID { conditions.append("e.device_id = ?"); arguments.append(deviceID) }
        if let userID = query.userID { conditions.append("e.user_id = ?"); arguments.append(userID) }
        var from = "connection_events e"
        if query.openOnly {
            from = """
                connection_events e JOIN (
                    SELECT node_id, peer_id, MAX(at) AS at FROM connection_events
                    WHERE event_type IN ('connect', 'disconnect') GROUP BY node_id, peer_id
                ) latest ON e.node_id = latest.node_id AND e.peer_id = latest.peer_id AND e.at = latest.at
                """
            conditions.append("e.event_type = 'connect'")
        }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let total = try sql.count("SELECT COUNT(*) FROM \(from) \(whereClause)", arguments)
        let items = try sql.records(ConnectionEventRecord.self, """
            SELECT e.* FROM \(from) \(whereClause) ORDER BY e.at DESC, e.id DESC LIMIT ? OFFSET ?
            """, arguments + [query.limit, query.offset])
        return (items, total)
    }
}
