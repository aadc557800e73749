import Foundation
import PharosRuntime
import PharosSpec
import PharosWireGuard
import Synchronization

/// The AmneziaWG engine on Linux, the adapter that runs a `TunnelPlan`: it starts and
/// supervises the userspace WireGuard daemon (amneziawg-go, or Debian's wireguard-go when
/// the profile carries no obfuscation), sends the plan's UAPI transaction, runs its iproute2
/// steps, and records in `TunnelState` what teardown must undo. Secrets go to the UAPI
/// socket only, never argv or the environment.
public final class LinuxTunnel: Sendable {
    public struct Options: Sendable {
        public var interface = "pharos0"
        /// The daemon binary; default: amneziawg-go when installed, else wireguard-go.
        public var binary: String?
        public var defaultRoute = true
        public var dns = TunnelPlan.DNS.profile
        public init() {}
    }

    public let plan: ConnectPlan
    public let options: Options
    private let daemon = ChildProcess()
    /// Set once `up` has finished, cleared by `down`; read by the watchdog from another task.
    private let current = Mutex<TunnelState?>(nil)

    public init(plan: ConnectPlan, options: Options = Options()) {
        self.plan = plan
        self.options = options
    }

    private let applied = Mutex("")

    /// The plan `up` ran (its UAPI transaction holds the keys: memory only) and where the
    /// peer is now; what a rotation starts from.
    private struct Live {
        var plan: TunnelPlan
        var host: String
        var port: Int
    }
    private let live = Mutex<Live?>(nil)

    /// The endpoint rotation this tunnel follows, once up; nil: it stays where it is.
    public var rotation: EndpointRotation? { live.withLock { $0?.plan.rotation } }

    /// Where the peer is now (`host:port`).
    public var endpoint: String {
        live.withLock { $0.map { HostPort(host: $0.host, port: $0.port).description } } ?? plan.endpoint
    }

    /// Moves the peer to the next endpoint of the rotation (one UAPI transaction; the session
    /// and its keys stay) and records it for `caravel status`. Returns the new `host:port`.
    @discardableResult
    public func rotate<R: RandomNumberGenerator>(using rng: inout R) throws(CaravelError) -> String {
        guard let now = live.withLock({ $0 }), let rotation = now.plan.rotation else {
            throw .tunnel("this tunnel does not rotate its endpoint")
        }
        let (host, port) = rotation.next(after: now.host, port: now.port, using: &rng)
        let endpoint = HostPort(host: host, port: port).description
        do { try UAPISocket(path: now.plan.socketPath).set(now.plan.moving(to: endpoint)) } catch {
            throw .tunnel("cannot move the tunnel to \(endpoint): \(error); it stays at \(HostPort(host: now.host, port: now.port))")
        }
        live.withLock { $0?.host = host; $0?.port = port }
        // Under the lock: `down` takes the state out of it before it removes the file, so a
        // save here can never bring a torn-down tunnel's file back.
        current.withLock { slot in
            slot?.endpoint = endpoint
            try? slot?.save()
        }
        return endpoint
    }

    var state: TunnelState? { current.withLock { $0 } }

    /// Routes and DNS as `up` set them (`TunnelPlan.summary`).
    public var summary: String { applied.withLock { $0 } }

    /// Up, and its daemon still running: what the systemd watchdog is fed for.
    public var isUp: Bool { state != nil && daemon.isRunning }

    public var daemonRunning: Bool { daemon.isRunning }

    /// Brings the tunnel up, or throws having undone whatever it had done.
    public func up() async throws(CaravelError) {
        guard geteuid() == 0 else { throw .permission("connecting needs root (CAP_NET_ADMIN): run `sudo caravel connect …`") }
        Self.cleanUpStale(interface: options.interface)
        guard let binary = daemonBinary else {
            throw .tunnel("neither amneziawg-go nor wireguard-go is installed (apt install wireguard-go, or pass --engine-binary)")
        }
        // Observed before anything of ours exists, so the answer is the host's own path.
        var host = TunnelPlan.Host(ipv6: FileManager.default.fileExists(atPath: "/proc/net/if_inet6"), resolved: Self.resolvedServesThisNamespace)
        host.endpointRoute = try TunnelPlan.endpointToObserve(for: plan, defaultRoute: options.defaultRoute, ipv6: host.ipv6)
            .flatMap(Self.route(to:))
        for other in TunnelPlan.rotationHostsToObserve(for: plan, defaultRoute: options.defaultRoute, ipv6: host.ipv6) {
            host.rotationRoutes[other] = try? Self.route(to: other)
        }
        let tunnelPlan: TunnelPlan
        do {
            tunnelPlan = try TunnelPlan.make(plan, interface: options.interface, defaultRoute: options.defaultRoute, daemon: binary,
                                             host: host, dns: options.dns)
        } catch {
            throw .tunnel("\(error)")
        }
        if (try? Command.run(["ip", "link", "show", "dev", options.interface])) != nil {
            throw .tunnel("interface \(options.interface) already exists and is not ours: `caravel down` or choose another --interface")
        }
        var state = TunnelState(pid: getpid(), daemonPID: 0, interface: options.interface, socketPath: tunnelPlan.socketPath,
                                entry: plan.entry, profile: plan.profileName, node: plan.nodeName, endpoint: plan.endpoint,
                                address: plan.wireGuard?.address ?? "", undo: [], startedAt: Date(),
                                rotationHosts: tunnelPlan.rotation?.hosts)
        do {
            try await startDaemon(tunnelPlan, state: &state)
            try state.save()
            try UAPISocket(path: tunnelPlan.socketPath).set(tunnelPlan.configuration)
            for step in tunnelPlan.steps {
                try Self.run(step.apply)
                if let undo = step.teardown {
                    state.undo.append(undo)
                    try state.save()
                }
            }
            // Under systemd-resolved with resolv.conf on its stub, the link's DNS (a plan step)
            // already takes every lookup: the file stays as it is.
            if !tunnelPlan.nameservers.isEmpty, !(host.resolved && ResolvConf.pointsToResolvedStub()) {
                let change = try ResolvConf.prepare(servers: tunnelPlan.nameservers, interface: options.interface)
                state.resolvConf = change
                try state.save()
                do { try change.apply() } catch {
                    state.resolvConf = nil  // nothing was changed, so teardown has nothing to put back
                    throw error
                }
            }
            current.withLock { $0 = state }
            applied.withLock { $0 = tunnelPlan.summary }
            live.withLock { $0 = Live(plan: tunnelPlan, host: plan.endpointHost, port: plan.endpointPort) }
        } catch {
            current.withLock { $0 = state }
            await down()
            if let error = error as? CaravelError { throw error }
            throw .tunnel("\(error)")
        }
    }

    private var daemonBinary: String? {
        if let binary = options.binary { return Command.locate(binary) }
        return Command.locate("amneziawg-go") ?? Command.locate("wireguard-go")
    }

    private func startDaemon(_ tunnelPlan: TunnelPlan, state: inout TunnelState) async throws(CaravelError) {
        let binary = tunnelPlan.daemon, socket = tunnelPlan.socketPath
        try? FileManager.default.removeItem(atPath: socket)
        do { try UserspaceDaemon.start(daemon, executable: binary, interface: tunnelPlan.interface, output: .nullDevice) } catch {
            throw .tunnel("cannot start \(binary): \(error)")
        }
        state.daemonPID = daemon.pid ?? 0
        guard await UserspaceDaemon.waitForSocket(UAPISocket(path: socket), of: daemon) else {
            throw .tunnel("\(binary) \(tunnelPlan.interface) did not open \(socket) within 5 s (is /dev/net/tun available?)")
        }
    }

    /// How the host reaches `address` now (`ip -4|-6 route get`).
    static func route(to address: String) throws(CaravelError) -> EndpointRoute? {
        do { return EndpointRoute(ipRouteGet: try Command.run(["ip", address.contains(":") ? "-6" : "-4", "route", "get", address])) } catch {
            throw .tunnel("\(error)")
        }
    }

    /// systemd-resolved runs and this is its network namespace (PID 1's): only then do its
    /// links include ours. Inside another namespace (`ip netns exec`) resolv.conf is all.
    static var resolvedServesThisNamespace: Bool {
        guard FileManager.default.fileExists(atPath: "/run/systemd/resolve/io.systemd.Resolve"), Command.locate("resolvectl") != nil,
              let ours = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net"),
              let init1 = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/1/ns/net") else { return false }
        return ours == init1
    }

    private static func run(_ argv: [String]) throws(CaravelError) {
        do { try Command.run(argv) } catch { throw .tunnel("\(error)") }
    }

    /// Stops the daemon and removes everything `up` added. Safe to call twice.
    public func down() async {
        live.withLock { $0 = nil }
        guard let state = current.withLock({ slot -> TunnelState? in defer { slot = nil }; return slot }) else { return }
        await daemon.stop(grace: .seconds(1))
        Self.teardown(state)
    }

    /// Removes what `state` records; a daemon that is not our child (a client that was
    /// killed left it) is stopped by its pid when it still runs and is a WireGuard daemon.
    static func teardown(_ state: TunnelState) {
        if let change = state.resolvConf, (try? change.restore()) != .restored {
            FileHandle.standardError.write(Data("caravel: \(ResolvConf.systemPath) no longer holds what connect wrote; it was left as it is\n".utf8))
        }
        for undo in state.undo.reversed() { _ = try? Command.run(undo) }
        if TunnelState.isAlive(state.daemonPID),
                  let name = TunnelState.processName(state.daemonPID), name.contains("wireguard") || name.contains("amneziawg"),
                  TunnelState.commandLine(state.daemonPID).contains(state.interface) {  // this tunnel's daemon, not another's
            kill(state.daemonPID, SIGTERM)
            for _ in 0..<50 where TunnelState.isAlive(state.daemonPID) { usleep(20_000) }
        }
        _ = try? Command.run(["ip", "link", "del", "dev", state.interface])
        try? FileManager.default.removeItem(atPath: state.socketPath)
        TunnelState.remove(interface: state.interface)
    }

    /// A previous client that died without tearing down (SIGKILL, crash): undo its state.
    @discardableResult
    public static func cleanUpStale(interface: String) -> Bool {
        guard let state = TunnelState.load(interface: interface), !TunnelState.isClient(state.pid, of: interface) || state.pid == getpid() else {
            return false
        }
        teardown(state)
        return true
    }

    /// Returns when the daemon exits (the tunnel is then gone) or the task is cancelled.
    public func waitWhileRunning() async {
        await daemon.waitForExit()
    }

    public struct Stats: Sendable, Equatable {
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
}
