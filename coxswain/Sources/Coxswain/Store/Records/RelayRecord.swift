import Foundation

/// A remote relay the controller dials (`cox relays enroll`). The embedded relay has no row:
/// it lives and dies with `cox serve`.
public struct RelayRecord: Codable, Sendable, Equatable, SQLRecord {
    public static let tableName = "relays"

    public var id: String
    public var name: String
    public var kind: RelayKind
    /// The tunnel port the controller dials, host:port.
    public var endpoint: String
    /// The relay leaf's SAN: the TLS name clients and the controller check.
    public var hostname: String
    /// The client-facing address put in join links, host:port.
    public var publicAddr: String
    public var status: RelayStatus
    public var region: String
    public var agentVersion: String
    public var certSerial: String
    public var certNotAfter: Int64
    public var version: Int64
    public var createdAt: Int64
    public var updatedAt: Int64
    /// The leaf the relay was last seen presenting (at a tunnel handshake, or as the current
    /// leaf of a renewal request; "" until then) and since when. `certSerial` is the leaf last
    /// issued to it, which the relay may not have installed yet.
    public var presentedSerial = ""
    public var presentedAt: Int64 = 0
    /// How its last renewal went: "" (none yet), "renewed", or "failed: <reason>".
    public var certRenewal = ""

    enum CodingKeys: String, CodingKey {
        case id, name, kind, endpoint, hostname, status, region, version
        case publicAddr = "public_addr", agentVersion = "agent_version", certSerial = "cert_serial"
        case certNotAfter = "cert_not_after", createdAt = "created_at", updatedAt = "updated_at"
        case presentedSerial = "presented_serial", presentedAt = "presented_at", certRenewal = "cert_renewal"
    }

    /// Whether the relay serves the leaf issued to it last. False while a renewed leaf has not
    /// been seen at a handshake yet (the relay presents it from its next one on).
    public var presentsIssuedLeaf: Bool { presentedSerial == certSerial }

    /// Where its certificate stands, in a few words (`cox relays list`, the admin API).
    public var renewalNote: String {
        if presentedSerial.isEmpty { return "not seen yet" }
        if !presentsIssuedLeaf {
            return certRenewal.hasPrefix("failed") ? certRenewal : "renewed leaf issued, not presented yet"
        }
        return certRenewal.isEmpty ? "enrolled leaf" : certRenewal
    }
}
