import ArgumentParser
import Foundation
import Logging
import PharosConfig
import PharosRuntime
import Relay

@main
struct RelayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "PharosVPN relay: the stateless public relay: clients reach the controller only through it.",
        version: RelayVersion.line,
        subcommands: [GenCSRCommand.self, RunCommand.self, VersionCommand.self])
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the version.")

    func run() {
        print(RelayVersion.line)
    }
}

struct ConfigDirOption: ParsableArguments {
    @Option(help: "Holds relay.key, relay.crt, ca.crt, device-ca.crt and optional relay.yaml.")
    var configDir = RelayPaths.defaultDirectory
    @Option(help: "Where the relay keeps the leaf it renewed itself to (default: the config dir).")
    var stateDir: String?

    var paths: RelayPaths { RelayPaths(directory: configDir, stateDirectory: stateDir) }
}

struct GenCSRCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gen-csr", abstract: "Create the relay key (once, 0600) and print a CSR for `cox relays enroll`.")

    @OptionGroup var options: ConfigDirOption

    func run() throws {
        print(try RelayCSR.generate(paths: options.paths), terminator: "")
    }
}

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Serve clients and forward their calls to the controller over its tunnel.")

    @OptionGroup var options: ConfigDirOption
    @Option(help: "Client listener, overriding client.listen_addr (e.g. :8443).") var clientAddr: String?
    @Option(help: "Tunnel listener, overriding tunnel.listen_addr (e.g. :8444).") var tunnelAddr: String?

    func run() async throws {
        let paths = options.paths
        var environment = ProcessInfo.processInfo.environment
        if let clientAddr { environment["RELAY_CLIENT_LISTEN_ADDR"] = clientAddr }
        if let tunnelAddr { environment["RELAY_TUNNEL_LISTEN_ADDR"] = tunnelAddr }
        let config = try RelayConfig.load(path: paths.config, environment: environment)
        let logger = DaemonLogging.bootstrap(level: config.logLevel, label: "pharos.relay")
        try await RelayRunner.run(paths: paths, config: config, logger: logger, signals: true)
    }
}
