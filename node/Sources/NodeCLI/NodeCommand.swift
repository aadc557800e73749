import ArgumentParser
import Foundation
import Logging
import NodeAgent
import PharosConfig

@main
struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        // Installed by the Debian package as pharos-node (nodejs owns /usr/bin/node): help and
        // man pages name the command the way it was invoked.
        commandName: invokedName(default: "node"),
        abstract: "PharosVPN node agent: an mTLS NodeControl server driving a userspace AmneziaWG/WireGuard data plane.",
        version: NodeAgentVersion.line,
        subcommands: [GenCSRCommand.self, RunCommand.self, StatusCommand.self, VersionCommand.self])
}

/// `pharos-node` when run under the name the Debian package installs, else `node`.
func invokedName(default name: String) -> String {
    let invoked = URL(fileURLWithPath: CommandLine.arguments.first ?? name).lastPathComponent
    return invoked == "pharos-node" ? invoked : name
}

struct ConfigDirOption: ParsableArguments {
    @Option(name: .customLong("config-dir"), help: "Holds node.key, node.crt, ca.crt and node.yaml.")
    var directory = NodePaths.defaultDirectory

    @Option(name: .customLong("state-dir"),
            help: "Where the agent keeps what it writes: applied state, its AmneziaWG and REALITY keys, the control socket (default: the config dir).")
    var stateDirectory: String?

    var paths: NodePaths { NodePaths(directory: directory, stateDirectory: stateDirectory) }
}

struct GenCSRCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gen-csr",
        abstract: "Create the node key once (0600) and print a PKCS#10 CSR for `cox nodes enroll`. Idempotent.")

    @OptionGroup var options: ConfigDirOption

    func run() throws {
        print(try NodeCSR.generate(paths: options.paths), terminator: "")
    }
}

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Restore the data plane from disk and serve NodeControl over mTLS.")

    @OptionGroup var options: ConfigDirOption

    func run() async throws {
        let paths = options.paths
        let config = try NodeConfig.load(path: paths.config)
        let logger = DaemonLogging.bootstrap(level: config.logLevel, label: "pharos.node")
        try await NodeApplication(paths: paths, config: config, agentVersion: NodeAgentVersion.line, logger: logger, signals: true).run()
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show what this node has applied, from its local state; no controller needed.")

    @OptionGroup var options: ConfigDirOption

    func run() throws {
        let paths = options.paths
        let state = try NodeStateStore(snapshotPath: paths.state).load()
        let identity = FileManager.default.fileExists(atPath: paths.amneziaWGIdentity)
            ? try AmneziaWGIdentity.loadOrCreate(at: paths.amneziaWGIdentity) : nil
        print("config dir:        \(paths.directory)")
        if paths.stateDirectory != paths.directory { print("state dir:         \(paths.stateDirectory)") }
        print("certificate:       \(FileManager.default.fileExists(atPath: paths.certificate) ? paths.certificate : "missing (enroll with cox nodes enroll)")")
        print("amneziawg key:     \(identity?.publicKey ?? "not generated yet (created at first run)")")
        print("applied revision:  \(state.amneziaWGRevision)")
        print("peers:             \(state.amneziaWGPeers.count)")
        for peer in state.amneziaWGPeers.prefix(50) {
            print("  \(peer.id.isEmpty ? "-" : peer.id)  \(peer.publicKey)  \(peer.allowedIPs.joined(separator: ","))")
        }
        if state.amneziaWGPeers.count > 50 { print("  … \(state.amneziaWGPeers.count - 50) more") }
    }
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the version.")

    func run() {
        print(NodeAgentVersion.line)
    }
}
