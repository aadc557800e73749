import ArgumentParser
import Coxswain
import Foundation
import PharosConfig
import PharosRuntime

struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Write cox.yaml with a preset and create the state (database, CA, controller certificate).")

    @Flag(help: "Personal preset: AmneziaWG only, embedded relay, short retention, no rotation (default).")
    var personal = false
    @Flag(help: "Enterprise preset: AmneziaWG + XRay, remote relays, idle nodes, long retention, rotation.")
    var enterprise = false
    @Option(help: "State directory (default ./state, beside the config).")
    var stateDir: String?
    @Option(help: ArgumentHelp("Keep the state in PostgreSQL: the 0600 file holding postgres://USER:PASSWORD@HOST:PORT/DATABASE (backend: postgres, store.dsn_file).",
                               valueName: "file"))
    var postgresDsnFile: String?
    @Flag(help: "Overwrite an existing config file.")
    var force = false
    @Flag(name: .customLong("print"), help: "Print the config file it would write and create nothing (the Debian package's default cox.yaml).")
    var printOnly = false
    @OptionGroup var options: ConfigOption

    func validate() throws {
        if personal && enterprise { throw ValidationError("choose one of --personal and --enterprise") }
    }

    func run() async throws {
        try await userFacing {
            var config = CoxConfig.preset(enterprise ? .enterprise : .personal)
            if let stateDir { config.stateDir = stateDir }
            if let postgresDsnFile {
                let path = URL(fileURLWithPath: postgresDsnFile).standardizedFileURL.path
                // Checked before anything is written: a DSN file others can read is refused.
                _ = try PostgresStoreConfiguration.load(dsnFile: path)
                config.backend = "postgres"
                config.dsnFile = path
            }
            if printOnly {
                print(config.yaml, terminator: config.yaml.hasSuffix("\n") ? "" : "\n")
                return
            }
            try CoxConfig.writeInitial(config, to: options.config, force: force)
            let controller = try Controller.open(configPath: options.config)
            let posture = config.posture.rawValue
            try await controller.store.write { tx in
                try tx.appendAudit(AuditEntry(action: "controller.init", targetType: "controller", targetID: "",
                                              detail: "{\"posture\":\"\(posture)\"}"), by: .cliUser)
            }
            print("wrote \(options.config) (\(config.posture.rawValue) preset)")
            print("state: \(controller.store.postgresDescription ?? controller.store.path)")
            print("CA fingerprint: \(try controller.pki.authority.fingerprint)")
        }
    }
}

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run the controller: reconcile every node now, then sweep for drift until stopped.")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        let controller = try options.open()
        let logger = DaemonLogging.bootstrap(level: controller.config.logLevel, label: "pharos.cox")
        try await controller.serve(logger: logger, signals: true)
    }
}
