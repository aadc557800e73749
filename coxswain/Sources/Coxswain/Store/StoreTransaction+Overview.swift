import GRDB

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
        var request = NodeRecord.all()
        if let ids = query.ids { request = request.filter(ids.contains(Column("id"))) }
        if let status = query.status { request = request.filter(Column("status") == status.rawValue) }
        if let region = query.region { request = request.filter(Column("region") == region) }
        if let search = query.search, !search.isEmpty {
            let pattern = "%\(search.replacingOccurrences(of: "%", with: ""))%"
            request = request.filter(Column("name").like(pattern) || Column("control_addr").like(pattern))
        }
        let total = try request.fetchCount(db)
        let nodes = try request.order(Column("name")).limit(query.limit, offset: query.offset).fetchAll(db)
        guard !nodes.isEmpty else { return ([], total) }
        let ids = nodes.map(\.id)
        let marks = databaseQuestionMarks(count: ids.count)
        var peers: [String: Int] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT node_id, COUNT(*) AS n FROM peers WHERE node_id IN (\(marks)) GROUP BY node_id",
                                    arguments: StatementArguments(ids)) {
            peers[row["node_id"]] = row["n"]
        }
        var handshakes: [String: Int64] = [:]
        for row in try Row.fetchAll(db, sql: """
            SELECT node_id, MAX(at) AS at FROM connection_events
            WHERE node_id IN (\(marks)) AND event_type IN ('connect', 'handshake') GROUP BY node_id
            """, arguments: StatementArguments(ids)) {
            handshakes[row["node_id"]] = row["at"]
        }
        return (nodes.map { NodeOverview(node: $0, peers: peers[$0.id] ?? 0, lastHandshakeAt: handshakes[$0.id]) }, total)
    }

    public func nodeCounts() throws -> [NodeStatus: Int] {
        var counts: [NodeStatus: Int] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT status, COUNT(*) AS n FROM nodes GROUP BY status") {
            if let status = NodeStatus(rawValue: row["status"]) { counts[status] = row["n"] }
        }
        return counts
    }

    /// Nodes whose applied revision is behind the one the store intends.
    public func nodesBehindCount() throws -> Int {
        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM nodes WHERE applied_revision < config_revision AND status != 'stopped'") ?? 0
    }

    public func deviceCounts() throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT user_id, COUNT(*) AS n FROM devices GROUP BY user_id") { counts[row["user_id"]] = row["n"] }
        return counts
    }

    public func count(of table: String) throws -> Int {
        precondition(["nodes", "users", "devices", "profile_specs", "peers", "relays", "audit_log", "connection_events"].contains(table))
        return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") ?? 0
    }

    public func sessions(_ query: SessionQuery) throws -> (items: [ConnectionEventRecord], total: Int) {
        var conditions: [String] = []
        var arguments: [any DatabaseValueConvertible] = []
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
        let total = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(from) \(whereClause)", arguments: StatementArguments(arguments)) ?? 0
        let items = try ConnectionEventRecord.fetchAll(db, sql: """
            SELECT e.* FROM \(from) \(whereClause) ORDER BY e.at DESC, e.id DESC LIMIT ? OFFSET ?
            """, arguments: StatementArguments(arguments + [query.limit, query.offset]))
        return (items, total)
    }
}
