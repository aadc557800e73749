import Foundation
import GRDB

/// A remote relay the controller dials (`cox relays enroll`). The embedded relay has no row:
/// it lives and dies with `cox serve`.
public struct RelayRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "relays"

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

    enum CodingKeys: String, CodingKey {
        case id, name, kind, endpoint, hostname, status, region, version
        case publicAddr = "public_addr", agentVersion = "agent_version", certSerial = "cert_serial"
        case certNotAfter = "cert_not_after", createdAt = "created_at", updatedAt = "updated_at"
    }
}
