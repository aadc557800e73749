/// The `.synced` sidecar of a cloud profile: what was synced, from where, when.
public struct SyncedMarker: Sendable, Equatable {
    public static let fileExtension = ".synced"
    static let format = ".synced"

    public var user: String
    public var revision: Int64
    public var relay: String
    /// The controller's CA fingerprint.
    public var controller: String
    /// RFC 3339.
    public var syncedAt: String

    public init(user: String, revision: Int64, relay: String, controller: String, syncedAt: String) {
        self.user = user
        self.revision = revision
        self.relay = relay
        self.controller = controller
        self.syncedAt = syncedAt
    }

    public var json: JSONValue {
        .object([
            JSONMember("user", .string(user)),
            JSONMember("revision", .integer(revision)),
            JSONMember("relay", .string(relay)),
            JSONMember("controller", .string(controller)),
            JSONMember("synced_at", .string(syncedAt)),
        ])
    }

    public func encoded() -> [UInt8] { json.indentedBytes() }

    public init(jsonBytes: [UInt8]) throws(PharosFormatError) {
        let f = try JSONFields(parsing: jsonBytes, format: Self.format, limit: 64 << 10)
        self.init(user: try f.optionalString("user"), revision: try f.integer("revision"),
                  relay: try f.optionalString("relay"), controller: try f.optionalString("controller"),
                  syncedAt: try f.string("synced_at"))
    }
}
