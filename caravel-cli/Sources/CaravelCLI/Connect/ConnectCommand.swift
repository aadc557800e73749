import Foundation
import ArgumentParser
import CaravelCore
import Logging
import PharosLifecycle
import PharosRuntime
import ServiceLifecycle

/// `caravel connect`, the composition root of a connection: the plan is resolved here, the
/// long-running parts (the tunnel or xray, the systemd watchdog) run as services of one
/// group that SIGTERM (`caravel down`, systemd) and SIGINT (Ctrl-C) shut down gracefully,
/// and the teardown runs here after the group, whatever ended it.
struct ConnectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connect", abstract: "Bring a tunnel up in the foreground (root); Ctrl-C or `caravel down` tears it down.",
        aliases: ["up"])
    @Argument(help: "Stored profile name (see `caravel list`).") var name: String
    @Option(help: "Profile inside it, by id or name (default: the first).") var profile: String?
    @Option(help: "Node by id or name (default: the path's entry, else the first).") var node: String?
    @Option(name: .customLong("protocol"), help: "amneziawg or xray-reality (default: AmneziaWG when offered).") var proto: String?
    @Flag(help: "Do not route all traffic through the tunnel, only the profile's own networks.") var noDefaultRoute = false
    @Option(help: ArgumentHelp("DNS while connected: comma-separated resolver addresses, or `system` to leave the host's DNS alone.",
                               discussion: "Default: the profile's resolver (1.1.1.1) when all traffic goes through the tunnel."))
    var dns: String?
    @Flag(help: "Stay on the first endpoint even when the profile asks to rotate between the node's addresses.") var noRotation = false
    @Option(help: "Tunnel interface name.") var interface = "pharos0"
    @Option(help: "The WireGuard or xray binary (default: amneziawg-go, else wireguard-go; xray).") var engineBinary: String?
    @OptionGroup var options: StoreOption

    func run() async throws {
        try await failing {
            let entry = try options.open().entry(name)
            var engine: ConnectPlan.Engine?
            if let proto {
                guard let parsed = ConnectPlan.Engine(rawValue: proto) else {
                    throw ValidationError("--protocol must be amneziawg or xray-reality")
                }
                engine = parsed
            }
            let plan = try ConnectPlan.resolve(entry: entry, profile: profile, node: node, engine: engine)
            switch plan.engine {
            case .amneziaWG: try await connectWireGuard(plan)
            case .xrayReality: try await connectXRay(plan)
            }
        }
    }

    func connectWireGuard(_ plan: ConnectPlan) async throws {
        var tunnelOptions = LinuxTunnel.Options()
        tunnelOptions.interface = interface
        tunnelOptions.binary = engineBinary
        tunnelOptions.defaultRoute = !noDefaultRoute
        tunnelOptions.dns = try Self.dnsChoice(dns)
        let tunnel = LinuxTunnel(plan: plan, options: tunnelOptions)
        let services: [(name: String, service: any Service)] = [
            // pharos-caravel@.service sets WatchdogSec=: fed while the tunnel is up and its daemon runs.
            ("watchdog", WatchdogService(healthy: { tunnel.isUp })),
            // Last, so a graceful shutdown reaches it first: the watchdog beats until it has said STOPPING.
            ("tunnel", TunnelService(tunnel: tunnel, started: .now, rotate: !noRotation)),
        ]
        try await Self.runUntilShutdown(services) { await tunnel.down() }
        print("disconnected; routes restored")
    }

    func connectXRay(_ plan: ConnectPlan) async throws {
        let xray = ChildProcess()
        try await Self.runUntilShutdown([("xray", XRayService(plan: plan, binary: engineBinary, xray: xray))]) {
            await xray.stop(grace: .seconds(3))
            XRayClient.removeConfig()
        }
    }

    /// `--dns`: nil → the profile's, `system` → the host's, else a list of addresses
    /// (checked as addresses by the tunnel plan).
    static func dnsChoice(_ option: String?) throws -> TunnelPlan.DNS {
        guard let option else { return .profile }
        if option == "system" { return .system }
        let servers = option.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard !servers.contains(where: \.isEmpty) else { throw ValidationError("--dns takes addresses separated by commas, or `system`") }
        return .servers(servers)
    }

    /// Runs `services` until one ends (a daemon that died throws) or a signal asks for a
    /// graceful shutdown, then `teardown` in every case, then rethrows what ended the run.
    static func runUntilShutdown(_ services: [(name: String, service: any Service)], teardown: () async -> Void) async throws {
        let group = DaemonServiceGroup.make(services, logger: quiet)
        do {
            try await group.run()
        } catch {
            await teardown()
            throw error
        }
        await teardown()
    }

    /// The group's own logging is debug chatter; what connect tells the user it prints.
    static let quiet = Logger(label: "caravel.connect", factory: { _ in SwiftLogNoOpLogHandler() })
}
