import Foundation
import PharosSpec

/// One message of `GET /ws/events`, as JSON text: node events keep upstream's fields
/// (`node_id, at, type, protocol, peer_id, message`), alerts their row's.
public enum LiveEvent: Sendable {
    /// A WatchEvents event of a node, with the device and user the peer belongs to when known.
    case node(NodeEvent)
    case alert(AlertRecord)
    /// A node's reachability changed (the reconciler's view).
    case nodeStatus(nodeID: String, name: String, status: NodeStatus, at: Int64)

    public struct NodeEvent: Sendable, Equatable {
        public var nodeID: String
        public var at: Int64
        /// HANDSHAKE_UP, HANDSHAKE_DOWN, PEER_CONNECTED, PEER_DISCONNECTED, ERROR.
        public var type: String
        public var `protocol`: String
        public var peerID: String
        public var message: String
        public var sourceEndpoint: String
        public var deviceID: String?
        public var userID: String?
        /// A disconnect's session bytes (rx: what the device sent), and why a synthetic one
        /// was written (`stream-lost`).
        public var rxBytes: Int64 = 0
        public var txBytes: Int64 = 0
        public var reason = ""
        /// The IP of `sourceEndpoint`, as the store resolved it.
        public var sourceIP = ""

        public init(nodeID: String, at: Int64, type: String, protocol: String, peerID: String, message: String = "",
                    sourceEndpoint: String = "", deviceID: String? = nil, userID: String? = nil) {
            self.nodeID = nodeID
            self.at = at
            self.type = type
            self.protocol = `protocol`
            self.peerID = peerID
            self.message = message
            self.sourceEndpoint = sourceEndpoint
            self.deviceID = deviceID
            self.userID = userID
        }
    }

    public var json: String {
        let value: JSONValue
        switch self {
        case .node(let e):
            value = .object([
                JSONMember("kind", .string("event")), JSONMember("node_id", .string(e.nodeID)),
                JSONMember("at", .string(LiveEvent.timestamp(e.at))), JSONMember("type", .string(e.type)),
                JSONMember("protocol", .string(e.protocol)), JSONMember("peer_id", .string(e.peerID)),
                JSONMember("message", .string(e.message)), JSONMember("source_endpoint", .string(e.sourceEndpoint)),
                JSONMember("device_id", e.deviceID.map(JSONValue.string) ?? .null),
                JSONMember("user_id", e.userID.map(JSONValue.string) ?? .null),
            ])
        case .alert(let a):
            value = .object([
                JSONMember("kind", .string("alert")), JSONMember("id", .string(a.id)), JSONMember("at", .string(LiveEvent.timestamp(a.at))),
                JSONMember("alert_kind", .string(a.kind)), JSONMember("severity", .string(a.severity.rawValue)),
                JSONMember("status", .string(a.status.rawValue)), JSONMember("node_id", a.nodeID.map(JSONValue.string) ?? .null),
                JSONMember("device_id", a.deviceID.map(JSONValue.string) ?? .null), JSONMember("detail", .string(a.detail)),
            ])
        case .nodeStatus(let nodeID, let name, let status, let at):
            value = .object([
                JSONMember("kind", .string("node_status")), JSONMember("node_id", .string(nodeID)), JSONMember("name", .string(name)),
                JSONMember("status", .string(status.rawValue)), JSONMember("at", .string(LiveEvent.timestamp(at))),
            ])
        }
        return String(decoding: value.compactBytes(), as: UTF8.self)
    }

    /// RFC 3339 with microseconds, UTC.
    public static func timestamp(_ micros: Int64) -> String {
        let seconds = micros / 1_000_000, fraction = micros % 1_000_000
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec, Int(fraction))
    }
}
