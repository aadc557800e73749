import Foundation
import Hummingbird

/// JSON shapes of the admin API (snake_case, times RFC 3339 UTC). Handlers turn records into
/// these and nothing else reaches the wire: no key, hash or ciphertext.
enum APITime {
    static func format(_ micros: Int64?) -> String? { micros.map(LiveEvent.timestamp) }
}

struct Page<Item: Encodable & Sendable>: ResponseEncodable, Sendable {
    var items: [Item]
    var total: Int
    var limit: Int
    var offset: Int
}

struct NodeDTO: ResponseEncodable, Sendable {
    var id, name, region, publicIP, controlAddr, status, agentVersion: String
    var forwarding, masquerade, isolation: Bool
    var wgPublicKey, xrayPublicKey: String?
    var endpointIPs: [String]
    var wgPort: Int
    var configRevision, appliedRevision: Int64
    var missedPolls: Int
    var lastSeenAt: String?
    var lastError: String
    var peers: Int
    var lastHandshakeAt: String?
    var version: Int64
    var createdAt, updatedAt: String?

    init(_ overview: NodeOverview) {
        let n = overview.node
        (id, name, region, publicIP, controlAddr, status, agentVersion) =
            (n.id, n.name, n.region, n.publicIP, n.controlAddr, n.status.rawValue, n.agentVersion)
        (forwarding, masquerade, isolation) = (n.forwarding, n.masquerade, n.isolation)
        (wgPublicKey, xrayPublicKey) = (n.wgPublicKey, n.xrayPublicKey)
        endpointIPs = n.endpointIPs.split(separator: ",").map(String.init)
        (wgPort, configRevision, appliedRevision, missedPolls) = (n.wgPort, n.configRevision, n.appliedRevision, n.missedPolls)
        (lastSeenAt, lastError) = (APITime.format(n.lastSeenAt), n.lastError)
        (peers, lastHandshakeAt) = (overview.peers, APITime.format(overview.lastHandshakeAt))
        (version, createdAt, updatedAt) = (n.version, APITime.format(n.createdAt), APITime.format(n.updatedAt))
    }

    enum CodingKeys: String, CodingKey {
        case id, name, region, status, forwarding, masquerade, isolation, peers, version
        case publicIP = "public_ip", controlAddr = "control_addr", agentVersion = "agent_version"
        case wgPublicKey = "wg_public_key", xrayPublicKey = "xray_public_key", endpointIPs = "endpoint_ips", wgPort = "wg_port"
        case configRevision = "config_revision", appliedRevision = "applied_revision", missedPolls = "missed_polls"
        case lastSeenAt = "last_seen_at", lastError = "last_error", lastHandshakeAt = "last_handshake_at"
        case createdAt = "created_at", updatedAt = "updated_at"
    }
}

struct RelayDTO: ResponseEncodable, Sendable {
    var id, name, kind, endpoint, hostname, publicAddr, status: String
    var tunnelUp: Bool?
    /// The leaf last issued to the relay; the one it was last seen presenting, and where its
    /// renewal stands (`RelayRecord.renewalNote`).
    var certSerial, presentedSerial, certRenewal: String
    var certNotAfter: String?
    var version: Int64

    init(_ r: RelayRecord, tunnelUp: Bool?) {
        (id, name, kind, endpoint, hostname, publicAddr, status) = (r.id, r.name, r.kind.rawValue, r.endpoint, r.hostname, r.publicAddr, r.status.rawValue)
        self.tunnelUp = tunnelUp
        (certSerial, presentedSerial, certRenewal) = (r.certSerial, r.presentedSerial, r.renewalNote)
        (certNotAfter, version) = (APITime.format(r.certNotAfter), r.version)
    }

    enum CodingKeys: String, CodingKey {
        case id, name, kind, endpoint, hostname, status, version
        case publicAddr = "public_addr", tunnelUp = "tunnel_up", certNotAfter = "cert_not_after"
        case certSerial = "cert_serial", presentedSerial = "presented_serial", certRenewal = "cert_renewal"
    }
}

struct UserDTO: ResponseEncodable, Sendable {
    var id, name, role, status: String
    var email: String?
    var keysEnrolled, hasPassword: Bool
    var devices: Int?
    var version: Int64
    var createdAt: String?

    init(_ u: UserRecord, devices: Int? = nil) {
        (id, name, role, status, email) = (u.id, u.name, u.role.rawValue, u.status.rawValue, u.email)
        (keysEnrolled, hasPassword) = (u.publicKey != nil, u.passwordHash != nil)
        (self.devices, version, createdAt) = (devices, u.version, APITime.format(u.createdAt))
    }

    enum CodingKeys: String, CodingKey {
        case id, name, role, status, email, devices, version
        case keysEnrolled = "keys_enrolled", hasPassword = "has_password", createdAt = "created_at"
    }
}

struct DeviceDTO: ResponseEncodable, Sendable {
    var id, userID, name, platform, status, tunnelIP: String
    var fingerprint: String?
    var ownKey: Bool
    var version: Int64
    var createdAt: String?

    init(_ d: DeviceRecord) {
        (id, userID, name, platform, status, tunnelIP, fingerprint) = (d.id, d.userID, d.name, d.platform, d.status.rawValue, d.tunnelIP, d.fingerprint)
        (ownKey, version, createdAt) = (d.encryptionPubkey != nil, d.version, APITime.format(d.createdAt))
    }

    enum CodingKeys: String, CodingKey {
        case id, name, platform, status, fingerprint, version
        case userID = "user_id", tunnelIP = "tunnel_ip", ownKey = "own_key", createdAt = "created_at"
    }
}

struct ProfileSpecDTO: ResponseEncodable, Sendable {
    var id, userID, name, `protocol`: String
    var deviceID, nodeID, pathID: String?
    var entryIPs: [String]
    var version: Int64
    var createdAt: String?

    init(_ s: ProfileSpecRecord) {
        (id, userID, name, `protocol`) = (s.id, s.userID, s.name, s.protocol.rawValue)
        (deviceID, nodeID, pathID) = (s.deviceID, s.nodeID, s.pathID)
        entryIPs = s.entryIPs.split(separator: ",").map(String.init)
        (version, createdAt) = (s.version, APITime.format(s.createdAt))
    }

    enum CodingKeys: String, CodingKey {
        case id, name, `protocol`, version
        case userID = "user_id", deviceID = "device_id", nodeID = "node_id", pathID = "path_id", entryIPs = "entry_ips"
        case createdAt = "created_at"
    }
}

struct TokenDTO: ResponseEncodable, Sendable {
    var id, name, scope, prefix, createdBy: String
    var createdAt, expiresAt, lastUsedAt, revokedAt: String?
    var state: String
    /// Only in the answer to POST /api/tokens.
    var secret: String?

    init(_ t: APITokenRecord, secret: String? = nil, now: Int64 = StoreClock.now()) {
        (id, name, scope, prefix, createdBy) = (t.id, t.name, t.scope.rawValue, t.prefix, t.createdBy)
        (createdAt, expiresAt) = (APITime.format(t.createdAt), APITime.format(t.expiresAt))
        (lastUsedAt, revokedAt) = (APITime.format(t.lastUsedAt), APITime.format(t.revokedAt))
        state = t.revokedAt != nil ? "revoked" : (t.expiresAt.map { $0 <= now } ?? false) ? "expired" : "active"
        self.secret = secret
    }

    enum CodingKeys: String, CodingKey {
        case id, name, scope, prefix, state, secret
        case createdBy = "created_by", createdAt = "created_at", expiresAt = "expires_at", lastUsedAt = "last_used_at"
        case revokedAt = "revoked_at"
    }
}

struct AuditRowDTO: Encodable, Sendable {
    var id, at, actor, actorKind, action, targetType, targetID, sourceIP, detail, result, error, rowHash: String

    init(_ r: AuditRecord) {
        (id, at, actor, actorKind, action) = (r.id, LiveEvent.timestamp(r.at), r.actor, r.actorKind, r.action)
        (targetType, targetID, sourceIP, detail) = (r.targetType, r.targetID, r.sourceIP, r.detail)
        (result, error, rowHash) = (r.result, r.error, r.rowHash)
    }

    enum CodingKeys: String, CodingKey {
        case id, at, actor, action, detail, result, error
        case actorKind = "actor_kind", targetType = "target_type", targetID = "target_id", sourceIP = "source_ip", rowHash = "row_hash"
    }
}

struct AuditPage: ResponseEncodable, Sendable {
    var items: [AuditRowDTO]
    var limit: Int
    /// Pass as `before` for the next (older) page; nil on the last page.
    var nextBefore: String?

    enum CodingKeys: String, CodingKey {
        case items, limit
        case nextBefore = "next_before"
    }
}

struct SessionEventDTO: Encodable, Sendable {
    var id, at, nodeID, peerID, `protocol`, eventType, sourceIP, sourceEndpoint, reason: String
    var deviceID, userID: String?
    var rxBytes, txBytes: Int64

    init(_ e: ConnectionEventRecord) {
        (id, at, nodeID, peerID, `protocol`, eventType) = (e.id, LiveEvent.timestamp(e.at), e.nodeID, e.peerID, e.protocol, e.eventType)
        (sourceIP, sourceEndpoint, reason, deviceID, userID) = (e.sourceIP, e.sourceEndpoint, e.reason, e.deviceID, e.userID)
        (rxBytes, txBytes) = (e.rxBytes, e.txBytes)
    }

    enum CodingKeys: String, CodingKey {
        case id, at, `protocol`, reason
        case nodeID = "node_id", peerID = "peer_id", eventType = "event_type", sourceIP = "source_ip"
        case sourceEndpoint = "source_endpoint", deviceID = "device_id", userID = "user_id", rxBytes = "rx_bytes", txBytes = "tx_bytes"
    }
}

struct AlertDTO: ResponseEncodable, Sendable {
    var id, at, kind, severity, status, detail: String
    var nodeID, deviceID, userID: String?
    var version: Int64
    var createdAt: String?

    init(_ a: AlertRecord) {
        (id, at, kind, severity, status, detail) = (a.id, LiveEvent.timestamp(a.at), a.kind, a.severity.rawValue, a.status.rawValue, a.detail)
        (nodeID, deviceID, userID, version, createdAt) = (a.nodeID, a.deviceID, a.userID, a.version, APITime.format(a.createdAt))
    }

    enum CodingKeys: String, CodingKey {
        case id, at, kind, severity, status, detail, version
        case nodeID = "node_id", deviceID = "device_id", userID = "user_id", createdAt = "created_at"
    }
}

/// The outcome of a mutation: what changed and what each affected node did with the push.
struct MutationDTO<Value: Encodable & Sendable>: ResponseEncodable, Sendable {
    var value: Value
    var pushes: [String: String]
}

extension FleetReconciler.Outcome {
    var summary: String {
        switch self {
        case .applied(let revision): "applied revision \(revision)"
        case .upToDate(let revision): "already at revision \(revision)"
        case .nodeAhead(let applied): "node is ahead (revision \(applied)); the sweep reconciles it"
        case .failed(let reason): "not reached (\(reason)); committed, the sweep delivers it"
        case .backingOff: "backing off after failures; the sweep delivers it"
        case .removed: "node removed"
        }
    }
}

// MARK: requests

struct LoginRequest: Decodable, Sendable { var email: String; var password: String }

struct NodePatchRequest: Decodable, Sendable {
    var version: Int64
    var name, region: String?
    var forwarding, masquerade, isolation: Bool?
    var endpointIPs: [String]?

    enum CodingKeys: String, CodingKey {
        case version, name, region, forwarding, masquerade, isolation
        case endpointIPs = "endpoint_ips"
    }
}

struct UserCreateRequest: Decodable, Sendable { var name: String; var email: String?; var role: String? }
struct UserPatchRequest: Decodable, Sendable { var version: Int64; var name: String?; var status: String? }
struct InviteRequest: Decodable, Sendable { var relay: String? }

struct DeviceCreateRequest: Decodable, Sendable {
    var name: String
    var platform: String?
    /// The device's X25519 public key, standard base64 (32 bytes).
    var encryptionKey: String?

    enum CodingKeys: String, CodingKey {
        case name, platform
        case encryptionKey = "encryption_key"
    }
}

struct ProfileCreateRequest: Decodable, Sendable {
    var name, user: String
    /// Exactly one of `node` (egress there) and `path` (a cascade).
    var node, path: String?
    var device: String?
    var entryIPs: [String]?
    var `protocol`: String?

    enum CodingKeys: String, CodingKey {
        case name, user, node, path, device, `protocol`
        case entryIPs = "entry_ips"
    }
}

struct PathCreateRequest: Decodable, Sendable {
    var name: String
    /// Node IDs or names, entry first: 2 or 3.
    var hops: [String]
    /// `#rrggbb`.
    var color: String?
}

struct PathDTO: Encodable, Sendable {
    var id, name, color: String
    var hops: [String]
    var createdAt: Int64

    init(_ path: PathRecord) { (id, name, color, hops, createdAt) = (path.id, path.name, path.color, path.hops, path.createdAt) }

    enum CodingKeys: String, CodingKey {
        case id, name, color, hops
        case createdAt = "created_at"
    }
}

struct ExitBindingDTO: Encodable, Sendable {
    var deviceID: String
    var pathID: String?

    init(_ binding: ExitBinding) { (deviceID, pathID) = (binding.deviceID, binding.pathID) }
    init(_ change: ExitSwitch) { (deviceID, pathID) = (change.device.id, change.path?.id) }

    enum CodingKeys: String, CodingKey {
        case deviceID = "device_id", pathID = "path_id"
    }
}

struct ExitBindRequest: Decodable, Sendable {
    var path: String
}

struct NodeLinkDTO: Encodable, Sendable {
    var id, entryNodeID, exitNodeID, innerInterface: String
    var listenPort, fwmark, tableID: Int

    init(_ link: NodeLinkRecord) {
        (id, entryNodeID, exitNodeID, innerInterface) = (link.id, link.entryNodeID, link.exitNodeID, link.innerInterface)
        (listenPort, fwmark, tableID) = (link.listenPort, link.fwmark, link.tableID)
    }

    enum CodingKeys: String, CodingKey {
        case id, fwmark
        case entryNodeID = "entry_node_id", exitNodeID = "exit_node_id", innerInterface = "inner_interface"
        case listenPort = "listen_port", tableID = "table_id"
    }
}

struct TokenCreateRequest: Decodable, Sendable {
    var name: String
    var scope: String
    /// `30d`, `12h`, `90m` or `never` (default).
    var expiresIn: String?

    enum CodingKeys: String, CodingKey {
        case name, scope
        case expiresIn = "expires_in"
    }
}

struct VersionRequest: Decodable, Sendable { var version: Int64? }
