import Foundation

/// What a running `caravel connect` set up, kept in `/run/pharos/caravel/<iface>.json` so
/// `down` and `status` (other processes) can find it, and so a crashed or SIGKILLed client
/// can be cleaned up by the next `down` or `connect`.
public struct TunnelState: Codable, Sendable, Equatable {
    public var pid: Int32
    public var daemonPID: Int32
    public var interface: String
    public var socketPath: String
    public var entry: String
    public var profile: String
    public var node: String
    public var endpoint: String
    public var address: String
    /// `ip route` argument lists added outside the interface (the endpoint pin); removed on teardown.
    public var pinnedRoutes: [[String]]
    public var defaultRoute: Bool
    public var startedAt: Date

    public static var directory: String {
        ProcessInfo.processInfo.environment["CARAVEL_RUN_DIR"] ?? "/run/pharos/caravel"
    }

    public static func path(interface: String) -> String { "\(directory)/\(interface).json" }

    public static func load(interface: String) -> TunnelState? {
        guard let data = FileManager.default.contents(atPath: path(interface: interface)) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(TunnelState.self, from: data)
    }

    /// Creates the run directory (0700) when missing.
    static func ensureDirectory() throws(CaravelError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw .io("cannot create \(directory): \(error.localizedDescription)")
        }
    }

    func save() throws(CaravelError) {
        try Self.ensureDirectory()
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(self) else { throw .io("cannot encode the tunnel state") }
        try ProfileStore.write(Array(data), to: Self.path(interface: interface))
    }

    static func remove(interface: String) { unlink(path(interface: interface)) }

    public static func isAlive(_ pid: Int32) -> Bool { pid > 0 && (kill(pid, 0) == 0 || errno == EPERM) }
}
