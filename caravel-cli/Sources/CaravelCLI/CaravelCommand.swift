import ArgumentParser
import CaravelCore
import PharosSpec

@main
struct CaravelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "caravel",
        abstract: "PharosVPN caravel: the headless Linux client.",
        version: CaravelVersion.line,
        subcommands: [VersionCommand.self])
}

/// The CLI ships with the core it links, so it carries the core's version.
enum CaravelVersion {
    static var line: String { "caravel \(CaravelCoreVersion.component) (protocol-spec \(PharosSpec.version))" }
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the version.")

    func run() {
        print(CaravelVersion.line)
    }
}
