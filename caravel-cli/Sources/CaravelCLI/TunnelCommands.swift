import ArgumentParser
import CaravelCore
import Foundation
import PharosRuntime
import PharosSpec

struct ConnectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connect", abstract: "Bring a tunnel up in the foreground (root); Ctrl-C or `caravel down` tears it down.",
        aliases: ["up"])
    @Argument(help: "Stored profile name (see `caravel list`).") var name: String
    @Option(help: "Profile inside it, by id or name (default: the first).") var profile: String?
    @Option(help: "Node by id or name (default: the path's entry, else the first).") var node: String?
    @Option(name: .customLong("protocol"), help: "amneziawg or xray-reality (default: AmneziaWG when offered).") var proto: String?
    @Flag(help: "Do not route all traffic through the tunnel, only the profile's own networks.") var noDefaultRoute = false
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
            case .amneziaWG: try await runWireGuard(plan)
            case .xrayReality: try await runXRay(plan)
            }
        }
    }

    func runWireGuard(_ plan: ConnectPlan) async throws {
        var tunnelOptions = LinuxTunnel.Options()
        tunnelOptions.interface = interface
        tunnelOptions.binary = engineBinary
        tunnelOptions.defaultRoute = !noDefaultRoute
        let tunnel = LinuxTunnel(plan: plan, options: tunnelOptions)
        let started = ContinuousClock.now
        let task = Task<Void, any Error> {
            try await tunnel.up()
            print("connected: \(plan.entry)/\(plan.profileName) via \(plan.nodeName) at \(plan.endpoint) on \(interface)"
                  + (noDefaultRoute ? "" : ", all IPv4 traffic routed through the tunnel")
                  + " (up in \(Int((ContinuousClock.now - started) / .milliseconds(1))) ms)")
            print("Ctrl-C or `caravel down` disconnects")
            fflush(nil)
            // Under systemd (pharos-caravel@PROFILE.service, Type=notify): ready once the tunnel
            // is up; the watchdog is fed while its WireGuard daemon runs.
            SystemdNotify.send("READY=1\nSTATUS=connected via \(plan.nodeName) at \(plan.endpoint)")
            async let _ = SystemdNotify.feedWatchdog { tunnel.daemonRunning }
            await tunnel.waitWhileRunning()
            SystemdNotify.send("STOPPING=1")
        }
        let signals = TerminationSignals(cancelling: task)
        defer { withExtendedLifetime(signals) {} }
        let result = await task.result
        let daemonDied = !Task.isCancelled && !tunnel.daemonRunning && tunnel.state != nil
        await tunnel.down()
        try result.get()
        if daemonDied { throw CaravelError.tunnel("the WireGuard daemon exited; the tunnel was torn down") }
        print("disconnected; routes restored")
    }

    func runXRay(_ plan: ConnectPlan) async throws {
        let xray = try XRayClient.start(plan: plan, binary: engineBinary)
        defer { try? FileManager.default.removeItem(atPath: XRayClient.configPath) }
        print("xray running: SOCKS5 proxy on 127.0.0.1:\(XRayClient.socksPort) to \(plan.nodeName) at \(plan.endpoint)")
        print("point applications at it (there is no system-wide tunnel for XRay on Linux yet); Ctrl-C stops")
        let task = Task<Void, any Error> { await xray.waitForExit() }
        let signals = TerminationSignals(cancelling: task)
        defer { withExtendedLifetime(signals) {} }
        _ = await task.result
        let died = !task.isCancelled && !xray.isRunning
        await xray.stop(grace: .seconds(3))
        if died { throw CaravelError.tunnel("xray exited on its own; see its output above") }
    }
}

struct DownCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down", abstract: "Disconnect the running tunnel (or clean up after a client that was killed).")
    @Option(help: "Tunnel interface name.") var interface = "pharos0"

    func run() async throws {
        try await failing {
            guard let state = TunnelState.load(interface: interface) else {
                print("not connected on \(interface)")
                return
            }
            if state.pid != getpid(), kill(state.pid, SIGTERM) == 0 {
                for _ in 0..<100 where TunnelState.load(interface: interface) != nil { try await Task.sleep(for: .milliseconds(100)) }
            }
            if LinuxTunnel.cleanUpStale(interface: interface) || TunnelState.load(interface: interface) == nil {
                print("disconnected \(interface)")
            } else {
                throw CaravelError.tunnel("the client (pid \(state.pid)) did not stop; kill it and run `caravel down` again")
            }
        }
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show the tunnel's state and counters.")
    @Option(help: "Tunnel interface name.") var interface = "pharos0"
    @Flag(help: "JSON for scripts.") var json = false

    func run() async throws {
        try await failing {
            guard let state = TunnelState.load(interface: interface), TunnelState.isAlive(state.pid) else {
                if json { printJSON(.object([JSONMember("connected", .bool(false)), JSONMember("interface", .string(interface))])) }
                else { print("not connected on \(interface)") }
                throw ExitCode(3)
            }
            let stats = try? LinuxTunnel.stats(of: state)
            if json {
                printJSON(.object([
                    JSONMember("connected", .bool(true)), JSONMember("interface", .string(interface)),
                    JSONMember("profile", .string("\(state.entry)/\(state.profile)")), JSONMember("node", .string(state.node)),
                    JSONMember("endpoint", .string(stats?.endpoint ?? state.endpoint)), JSONMember("address", .string(state.address)),
                    JSONMember("rx_bytes", .integer(stats?.rxBytes ?? 0)), JSONMember("tx_bytes", .integer(stats?.txBytes ?? 0)),
                    JSONMember("last_handshake", .integer(stats?.lastHandshake ?? 0)),
                    JSONMember("since", .string(ISO8601DateFormatter().string(from: state.startedAt))),
                ]))
            } else {
                print("connected on \(interface): \(state.entry)/\(state.profile) via \(state.node) at \(stats?.endpoint ?? state.endpoint)")
                print("  address \(state.address), since \(state.startedAt)")
                if let stats {
                    let handshake = stats.lastHandshake == 0 ? "none yet" : "\(Int64(Date().timeIntervalSince1970) - stats.lastHandshake) s ago"
                    print("  received \(stats.rxBytes) B, sent \(stats.txBytes) B, last handshake \(handshake)")
                }
            }
        }
    }
}
