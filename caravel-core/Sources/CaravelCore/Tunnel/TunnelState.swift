import Foundation
import PharosSpec

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
    /// The teardown argv of each applied `TunnelPlan` step that outlives the interface (the
    /// endpoint pin), in the order applied; teardown runs them last first. Recorded as each
    /// step succeeds, so a client killed halfway is undone exactly as far as it got.
    public var undo: [[String]]
    public var startedAt: Date
    /// The change to `/etc/resolv.conf`, recorded before the file is written.
    public var resolvConf: ResolvConf? = nil
    /// With endpoint rotation: every address the tunnel may move to, each pinned to its
    /// path like the endpoint (so `endpoint` may be any of them).
    public var rotationHosts: [String]? = nil

    /// A state names at most this many rotation addresses.
    static let maximumRotationHosts = 64

    public static var directory: String {
        ProcessInfo.processInfo.environment["CARAVEL_RUN_DIR"] ?? "/run/pharos/caravel"
    }

    public static func path(interface: String) -> String { "\(directory)/\(interface).json" }

    /// The state of `interface` when there is one caravel could have written; nil otherwise
    /// (`loadChecked` says why a file is refused).
    public static func load(interface: String) -> TunnelState? {
        try? loadChecked(interface: interface)
    }

    /// Nil when there is no state file. Teardown runs as root what the file records, so a file
    /// that does not decode or asks for anything but undoing a tunnel is refused, never acted on.
    public static func loadChecked(interface: String) throws(CaravelError) -> TunnelState? {
        let path = path(interface: interface)
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        // Only a file this user wrote and no one else can have: teardown acts on it as root.
        guard info.st_mode & S_IFMT == S_IFREG, info.st_uid == geteuid(), info.st_mode & 0o022 == 0 else {
            throw .tunnel("\(path) is not a regular file owned by this user and writable by it alone; nothing in it was run or signalled")
        }
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        guard let state = try? decoder.decode(TunnelState.self, from: data) else {
            throw .tunnel("\(path) is not a tunnel state caravel wrote; it was left as it is (remove it by hand)")
        }
        if let reason = state.untrustworthy(as: interface) {
            throw .tunnel("\(path) is not a tunnel state caravel wrote (\(reason)); nothing in it was run or signalled")
        }
        return state
    }

    /// Why this state must not be acted on, or nil: its interface is the file's, its socket is
    /// a WireGuard daemon's socket of that interface, and every undo step is `ip route del` of
    /// the endpoint's (or a rotation address's) host route, optionally via an address, on a
    /// device, once per address, or the removal of an IPv6 block.
    public func untrustworthy(as expectedInterface: String) -> String? {
        guard interface == expectedInterface, TunnelPlan.isInterfaceName(interface) else { return "interface \(String(reflecting: interface))" }
        guard socketPath == "/var/run/amneziawg/\(interface).sock" || socketPath == "/var/run/wireguard/\(interface).sock" else {
            return "socket path \(String(reflecting: socketPath))"
        }
        guard pid > 0, daemonPID >= 0 else { return "pid \(pid), daemon pid \(daemonPID)" }
        // The steps that outlive the interface: the pin of this tunnel's own endpoint and the
        // routes that keep IPv6 from going around the tunnel.
        let rotating = rotationHosts ?? []
        guard rotating.count <= Self.maximumRotationHosts, rotating.allSatisfy({ TunnelPlan.isIPv4($0) || TunnelPlan.isIPv6($0) }) else {
            return "rotation hosts \(rotating.prefix(4))"
        }
        let hosts = Set([(try? HostPort.parse(endpoint))?.host ?? ""] + rotating).subtracting([""])
        for step in undo where !hosts.contains(where: { Self.isRouteDeletion(step, of: $0) }) && !Self.isIPv6Unblock(step) {
            return "undo step \(step)"
        }
        let unblocks = undo.filter(Self.isIPv6Unblock)
        guard hosts.allSatisfy({ host in undo.filter { Self.isRouteDeletion($0, of: host) }.count <= 1 }),
              Set(unblocks).count == unblocks.count else { return "\(undo.count) undo steps" }
        if let reason = resolvConf?.untrustworthy { return reason }
        return nil
    }

    /// `ip -6 route del unreachable ::/1` or `8000::/1`, and nothing else.
    static func isIPv6Unblock(_ argv: [String]) -> Bool {
        TunnelPlan.ipv6Halves.contains { argv == ["ip", "-6", "route", "del", "unreachable", $0] }
    }

    /// `ip route del ENDPOINT/32|/128 [via ADDRESS] [dev DEVICE]`: what a tunnel plan's pin
    /// of the endpoint `host` undoes, and nothing else (not the default route, say).
    static func isRouteDeletion(_ argv: [String], of host: String) -> Bool {
        guard argv.count >= 4, Array(argv.prefix(3)) == ["ip", "route", "del"], !host.isEmpty,
              argv[3] == host + "/32" || argv[3] == host + "/128", CIDR.isValid(argv[3]) else { return false }
        var rest = argv.dropFirst(4)
        while let keyword = rest.popFirst() {
            guard let value = rest.popFirst() else { return false }
            switch keyword {
            case "via": guard CIDR.isValid(value + (value.contains(":") ? "/128" : "/32")) else { return false }
            case "dev": guard TunnelPlan.isInterfaceName(value) else { return false }
            default: return false
            }
        }
        return true
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

    /// Whether `pid` is a running `caravel connect` of `interface`: a pid from the file is
    /// signalled only then (the client may be long gone and its pid reused by anything,
    /// another tunnel's client included).
    public static func isClient(_ pid: Int32, of interface: String) -> Bool {
        guard isAlive(pid), processName(pid) == "caravel" else { return false }
        return connects(commandLine(pid), interface: interface)
    }

    /// Whether `caravel connect|up … [--interface IFACE]` brings up `interface` (pharos0 when
    /// no --interface is given).
    static func connects(_ argv: [String], interface: String) -> Bool {
        guard argv.contains("connect") || argv.contains("up") else { return false }
        var named: String?
        for (index, argument) in argv.enumerated() {
            if argument == "--interface", index + 1 < argv.count { named = argv[index + 1] }
            if argument.hasPrefix("--interface=") { named = String(argument.dropFirst("--interface=".count)) }
        }
        return (named ?? "pharos0") == interface
    }

    /// The arguments a process was started with (`/proc/PID/cmdline`).
    static func commandLine(_ pid: Int32) -> [String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return [] }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The kernel's name of a process (`/proc/PID/comm`), nil when there is none.
    static func processName(_ pid: Int32) -> String? {
        (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
