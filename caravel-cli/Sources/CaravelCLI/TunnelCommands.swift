import ArgumentParser
import CaravelCore
import Foundation
import PharosSpec

struct DownCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down", abstract: "Disconnect the running tunnel (or clean up after a client that was killed).")
    @Option(help: "Tunnel interface name.") var interface = "pharos0"

    func run() async throws {
        try await failing {
            guard let state = try TunnelState.loadChecked(interface: interface) else {
                print("not connected on \(interface)")
                return
            }
            if state.pid != getpid(), TunnelState.isClient(state.pid, of: interface), kill(state.pid, SIGTERM) == 0 {
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
            guard let state = try TunnelState.loadChecked(interface: interface), TunnelState.isClient(state.pid, of: interface) else {
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
