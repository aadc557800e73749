import ArgumentParser
import Relay

@main
struct RelayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "PharosVPN relay: the stateless public relay: clients reach the controller only through it.",
        version: RelayVersion.line,
        subcommands: [VersionCommand.self])
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the version.")

    func run() {
        print(RelayVersion.line)
    }
}
