import ArgumentParser
import NodeAgent

@main
struct NodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "PharosVPN node: the VPN node agent: an mTLS NodeControl server driving AmneziaWG/WireGuard and XRay.",
        version: NodeAgentVersion.line,
        subcommands: [VersionCommand.self])
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the version.")

    func run() {
        print(NodeAgentVersion.line)
    }
}
