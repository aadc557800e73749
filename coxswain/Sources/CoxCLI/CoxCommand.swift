import ArgumentParser
import Coxswain

@main
struct CoxCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cox",
        abstract: "PharosVPN cox: the private controller: state, CA, enrollment, reconcile, audit, admin API.",
        version: CoxswainVersion.line,
        subcommands: [VersionCommand.self])
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the version.")

    func run() {
        print(CoxswainVersion.line)
    }
}
