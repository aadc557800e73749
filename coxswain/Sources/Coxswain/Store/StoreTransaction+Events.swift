import Foundation
import PharosSpec

/// One row of `connection_events`, before the store resolves device and user.
public struct ConnectionEventInput: Sendable, Equatable {
    public var at: Int64
    public var nodeID: String
    public var peerID: String
    public var `protocol`: String
    /// connect | disconnect | handshake
    public var eventType: String
    public var sourceEndpoint: String
    public var rxBytes: Int64
    public var txBytes: Int64
    public var reason: String

    public init(at: Int64, nodeID: String, peerID: String, protocol: String, eventType: String, sourceEndpoint: String = "",
                rxBytes: Int64 = 0, txBytes: Int64 = 0, reason: String = "") {
        self.at = at
        self.nodeID = nodeID
        self.peerID = peerID
        self.protocol = `protocol`
        self.eventType = eventType
        self.sourceEndpoint = sourceEndpoint
        self.rxBytes = rxBytes
        self.txBytes = txBytes
        self.reason = reason
    }

    /// The IP of `ip:port` or `[v6]:port`.
    var sourceIP: String {
        (try? HostPort.parse(sourceEndpoint))?.host ?? sourceEndpoint
    }
}

public struct ConnectionEventRecord: Codable, Sendable, Equatable, SQLRecord {
    public static let tableName = "connection_events"
    public var id: String
    public var at: Int64
    public var nodeID: String
    public var peerID: String
    public var deviceID: String?
    public var userID: String?
    public var `protocol`: String
    public var eventType: String
    public var sourceIP: String
    public var sourceEndpoint: String
    /// The node's cumulative counters of the peer on a connect or handshake; on a disconnect
    /// the bytes of that session (as upstream: rx is what the device sent, its upload).
    public var rxBytes: Int64
    public var txBytes: Int64
    public var reason: String
    /// On a connect: when the device was last active before it (µs), nil for its first.
    public var previousSeenAt: Int64? = nil

    enum CodingKeys: String, CodingKey {
        case id, at, reason, `protocol`
        case nodeID = "node_id", peerID = "peer_id", deviceID = "device_id", userID = "user_id", eventType = "event_type"
        case sourceIP = "source_ip", sourceEndpoint = "source_endpoint", rxBytes = "rx_bytes", txBytes = "tx_bytes"
        case previousSeenAt = "previous_seen_at"
    }
}

extension StoreTransaction {
    /// Records a session event, resolving the peer to its device and user (a removed device's
    /// peer still resolves to it). A disconnect carries the session's bytes: the node's
    /// counters minus those at the peer's last connect on that node (the whole counter when
    /// it went back, i.e. the node restarted, or no connect is on record). A connect carries
    /// when the device was last active before it.
    @discardableResult
    public func recordConnectionEvent(_ input: ConnectionEventInput) throws -> ConnectionEventRecord {
        let owner = try sql.row("""
            SELECT p.device_id AS device_id, d.user_id AS user_id FROM peers p JOIN devices d ON d.id = p.device_id WHERE p.id = ?
            UNION ALL SELECT device_id, user_id FROM removed_peers WHERE peer_id = ? LIMIT 1
            """, [input.peerID, input.peerID])
        let deviceID: String? = owner.flatMap { $0["device_id"] as String? }
        var (rx, tx) = (input.rxBytes, input.txBytes)
        if input.eventType == "disconnect", rx > 0 || tx > 0, let start = try sql.row("""
            SELECT rx_bytes, tx_bytes FROM connection_events WHERE node_id = ? AND peer_id = ? AND at <= ? AND event_type = 'connect'
            ORDER BY at DESC, id DESC LIMIT 1
            """, [input.nodeID, input.peerID, input.at]) {
            let (startRx, startTx): (Int64, Int64) = (start["rx_bytes"], start["tx_bytes"])
            if rx >= startRx && tx >= startTx { (rx, tx) = (rx - startRx, tx - startTx) }
        }
        var previous: Int64?
        if let deviceID {
            previous = try sql.value(Int64.self, "SELECT last_seen_at FROM devices WHERE id = ?", [deviceID])
            try sql.execute("""
                UPDATE devices SET last_seen_at = CASE WHEN COALESCE(last_seen_at, 0) > ? THEN COALESCE(last_seen_at, 0) ELSE ? END
                WHERE id = ?
                """, [input.at, input.at, deviceID])
        }
        let record = ConnectionEventRecord(id: EntityID.make(.event), at: input.at, nodeID: input.nodeID, peerID: input.peerID,
                                           deviceID: deviceID, userID: owner.flatMap { $0["user_id"] as String? }, protocol: input.protocol,
                                           eventType: input.eventType, sourceIP: input.sourceIP, sourceEndpoint: input.sourceEndpoint,
                                           rxBytes: rx, txBytes: tx, reason: input.reason,
                                           previousSeenAt: input.eventType == "connect" ? previous : nil)
        try sql.insert(record)
        return record
    }

    /// `retention.metrics_days`: connection history older than `cutoff` goes; how many rows.
    public func purgeConnectionEvents(olderThan cutoff: Int64) throws -> Int {
        try sql.execute("DELETE FROM connection_events WHERE at < ?", [cutoff])
    }

    /// Events of known devices since `time`, oldest first (the anomaly sweep's window).
    public func deviceConnectionEvents(since time: Int64) throws -> [ConnectionEventRecord] {
        try sql.all(ConnectionEventRecord.self, where: "device_id IS NOT NULL AND at >= ?", [time], orderBy: "at, id")
    }

    public func connectionEvents(node nodeID: String? = nil, limit: Int = 1000) throws -> [ConnectionEventRecord] {
        if let nodeID {
            return try sql.records(ConnectionEventRecord.self, "SELECT * FROM connection_events WHERE node_id = ? ORDER BY at, id LIMIT ?",
                                   [nodeID, limit])
        }
        return try sql.records(ConnectionEventRecord.self, "SELECT * FROM connection_events ORDER BY at, id LIMIT ?", [limit])
    }
}
