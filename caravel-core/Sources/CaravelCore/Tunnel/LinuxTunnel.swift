import Foundation
import PharosRuntime
import PharosSpec
import PharosWireGuard

/// The AmneziaWG engine on Linux: a userspace WireGuard daemon (amneziawg-go, or Debian's
/// wireguard-go when the profile carries no obfuscation) that this process starts and
/// supervises, configured over UAPI; address, MTU and routes through iproute2. With the
/// default route, 0.0.0.0/1 + 128.0.0.0/1 go into the tunnel and the endpoint is pinned to
/// the original gateway, so nothing of the system's own routes is touched; teardown removes
/// exactly what was added. Secrets go to the UAPI socket only, never argv or the environment.
public final class LinuxTunnel: @unchecked Sendable {
    public struct Options: Sendable {
        public var interface = "pharos0"
        /// The daemon binary; default: amneziawg-go when installed, else wireguard-go.
        public var binary: String?
        public var defaultRoute = true
        public init() {}
    }

    public let plan: ConnectPlan
    public let options: Options
    private let daemon = ChildProcess()
    private(set) public var state: TunnelState?

    public init(plan: ConnectPlan, options: Options = Options()) {
        self.plan = plan
        self.options = options
    }

    var socketDirectory: String {
        (binaryPath ?? "").hasSuffix("amneziawg-go") ? "/var/run/amneziawg" : "/var/run/wireguard"
    }

    lazy var binaryPath: String? = {
        if let binary = options.binary { return Command.locate(binary) }
        return Command.locate("amneziawg-go") ?? Command.locate("wireguard-go")
    }()

    /// Brings the tunnel up, or throws having undone whatever it had done.
    public func up() async throws(CaravelError) {
        guard let params = plan.wireGuard, plan.engine == .amneziaWG else {
            throw .tunnel("this plan is not an AmneziaWG plan")
        }
        guard geteuid() == 0 else { throw .permission("connecting needs root (CAP_NET_ADMIN): run `sudo caravel connect …`") }
        Self.cleanUpStale(interface: options.interface)
        guard let binary = binaryPath else {
            throw .tunnel("neither amneziawg-go nor wireguard-go is installed (apt install wireguard-go, or pass --engine-binary)")
        }
        if !params.obfuscation.isEmpty, binary.hasSuffix("wireguard-go") {
            throw .tunnel("node \(plan.nodeName) uses AmneziaWG obfuscation, which \(binary) cannot speak: install amneziawg-go")
        }
        guard let privateKey = WireGuardKey.hex(fromBase64: params.privateKey),
              let peerKey = WireGuardKey.hex(fromBase64: params.publicKey) else {
            throw .tunnel("the profile's WireGuard keys are malformed; sync again")
        }
        if (try? Command.run(["ip", "link", "show", "dev", options.interface])) != nil {
            throw .tunnel("interface \(options.interface) already exists and is not ours: `caravel down` or choose another --interface")
        }
        var state = TunnelState(pid: getpid(), daemonPID: 0, interface: options.interface,
                                socketPath: "\(socketDirectory)/\(options.interface).sock", entry: plan.entry,
                                profile: plan.profileName, node: plan.nodeName, endpoint: plan.endpoint,
                                address: params.address, pinnedRoutes: [], defaultRoute: options.defaultRoute, startedAt: Date())
        do {
            try await startDaemon(binary: binary, state: &state)
            try state.save()
            let psk = params.presharedKey.isEmpty ? nil : WireGuardKey.hex(fromBase64: params.presharedKey)
            let deviceLines = params.obfuscation.isEmpty ? [] : params.obfuscation.uapiLines
            try uapi(state).set(UAPI.Set(privateKeyHex: privateKey, deviceLines: deviceLines, replacePeers: true, peers: [
                UAPI.Peer(publicKeyHex: peerKey, presharedKeyHex: psk, allowedIPs: plan.routes, endpoint: plan.endpoint,
                          persistentKeepaliveSeconds: ConnectPlan.keepaliveSeconds),
            ]))
            try ip(["address", "add", params.address, "dev", options.interface])
            try ip(["link", "set", "dev", options.interface, "mtu", String(plan.mtu), "up"])
            try addRoutes(state: &state)
            try state.save()
            self.state = state
        } catch {
            self.state = state
            await down()
            if let error = error as? CaravelError { throw error }
            throw .tunnel("\(error)")
        }
    }

    private func uapi(_ state: TunnelState) -> UAPISocket { UAPISocket(path: state.socketPath) }

    private func startDaemon(binary: String, state: inout TunnelState) async throws {
        try? FileManager.default.removeItem(atPath: state.socketPath)
        do { try UserspaceDaemon.start(daemon, executable: binary, interface: options.interface, output: .nullDevice) } catch {
            throw CaravelError.tunnel("cannot start \(binary): \(error)")
        }
        state.daemonPID = daemon.pid ?? 0
        guard await UserspaceDaemon.waitForSocket(uapi(state), of: daemon) else {
            throw CaravelError.tunnel("\(binary) \(options.interface) did not open \(state.socketPath) within 5 s (is /dev/net/tun available?)")
        }
    }

    /// Default route: the endpoint pinned to the way it is reached now, then the two
    /// halves of the address space into the tunnel. Otherwise only the profile's
    /// non-default routes.
    private func addRoutes(state: inout TunnelState) throws {
        let v4Routes = plan.routes.filter { !$0.contains(":") }
        if options.defaultRoute && v4Routes.contains("0.0.0.0/0") {
            if let pin = try Self.pinRoute(to: plan.endpointHost) {
                try ip(["route", "add"] + pin)
                state.pinnedRoutes.append(pin)
                try state.save()
            }
            for half in ["0.0.0.0/1", "128.0.0.0/1"] { try ip(["route", "add", half, "dev", options.interface]) }
        } else {
            for route in v4Routes where route != "0.0.0.0/0" && !Self.covers(address: state.address, route: route) {
                try ip(["route", "add", route, "dev", options.interface])
            }
        }
    }

    /// `ip route` arguments that keep the endpoint on its current path (nil when it is the
    /// loopback or on-link and needs nothing).
    static func pinRoute(to host: String) throws -> [String]? {
        guard !host.contains(":") else { return nil }
        let output = try Command.run(["ip", "-4", "route", "get", host])
        let words = output.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
        func value(after key: String) -> String? { words.firstIndex(of: key).flatMap { $0 + 1 < words.count ? words[$0 + 1] : nil } }
        guard let dev = value(after: "dev"), dev != "lo" else { return nil }
        if let via = value(after: "via") { return ["\(host)/32", "via", via, "dev", dev] }
        return ["\(host)/32", "dev", dev]
    }

    static func covers(address: String, route: String) -> Bool { address == route }

    /// Stops the daemon and removes everything `up` added. Safe to call twice.
    public func down() async {
        guard let state else { return }
        await daemon.stop(grace: .seconds(1))
        Self.teardown(state)
        self.state = nil
    }

    /// Removes what `state` records; a daemon that is not our child (a client that was
    /// killed left it) is stopped by its pid when it still runs and is a WireGuard daemon.
    static func teardown(_ state: TunnelState) {
        for pin in state.pinnedRoutes { _ = try? Command.run(["ip", "route", "del"] + pin) }
        if TunnelState.isAlive(state.daemonPID),
                  let name = processName(state.daemonPID), name.contains("wireguard") || name.contains("amneziawg") {
            kill(state.daemonPID, SIGTERM)
            for _ in 0..<50 where TunnelState.isAlive(state.daemonPID) { usleep(20_000) }
        }
        _ = try? Command.run(["ip", "link", "del", "dev", state.interface])
        try? FileManager.default.removeItem(atPath: state.socketPath)
        TunnelState.remove(interface: state.interface)
    }

    static func processName(_ pid: Int32) -> String? {
        (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A previous client that died without tearing down (SIGKILL, crash): undo its state.
    @discardableResult
    public static func cleanUpStale(interface: String) -> Bool {
        guard let state = TunnelState.load(interface: interface), !TunnelState.isAlive(state.pid) || state.pid == getpid() else {
            return false
        }
        teardown(state)
        return true
    }

    /// Returns when the daemon exits (the tunnel is then gone) or the task is cancelled.
    public func waitWhileRunning() async {
        await daemon.waitForExit()
    }

    public var daemonRunning: Bool { daemon.isRunning }

    public struct Stats: Sendable, Equatable, Codable {
        public var rxBytes: UInt64
        public var txBytes: UInt64
        /// Seconds since the epoch; 0 = no handshake yet.
        public var lastHandshake: Int64
        public var endpoint: String
    }

    public static func stats(of state: TunnelState) throws(CaravelError) -> Stats {
        do {
            let device = try UAPISocket(path: state.socketPath).get()
            let peer = device.peers.first
            return Stats(rxBytes: peer?.rxBytes ?? 0, txBytes: peer?.txBytes ?? 0, lastHandshake: peer?.lastHandshakeSeconds ?? 0,
                         endpoint: peer?.endpoint ?? state.endpoint)
        } catch {
            throw .tunnel("cannot read the tunnel's counters: \(error)")
        }
    }

    private func ip(_ arguments: [String]) throws {
        do { try Command.run(["ip"] + arguments) } catch { throw CaravelError.tunnel("\(error)") }
    }
}
