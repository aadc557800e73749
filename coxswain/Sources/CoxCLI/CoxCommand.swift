import ArgumentParser
import Coxswain
import Foundation

@main
struct CoxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cox",
        abstract: "PharosVPN cox: the private controller: state, CA, enrollment, reconcile, audit, admin API.",
        version: CoxswainVersion.line,
        subcommands: [InitCommand.self, ServeCommand.self, NodesCommand.self, UsersCommand.self, DevicesCommand.self,
                      ProfilesCommand.self, PathsCommand.self, RelaysCommand.self, EnrollCommand.self, ProfileCommand.self, AuditCommand.self, TokensCommand.self,
                      PKICommand.self, AlertsCommand.self, GeoIPCommand.self, BackupCommand.self, RestoreCommand.self, SSHKeyCommand.self,
                      VersionCommand.self])
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the version.")

    func run() {
        print(CoxswainVersion.line)
    }
}

/// `--config`, shared by every command that opens the controller's state.
struct ConfigOption: ParsableArguments {
    /// The packaged controller's config (pharos-coxswain).
    static let packagedConfig = "/etc/pharos/coxswain/cox.yaml"

    @Option(name: .long, help: "The controller's config file; a relative state_dir is resolved beside it (default: $COX_CONFIG, else ./cox.yaml, else /etc/pharos/coxswain/cox.yaml when only that exists).")
    var config = ConfigOption.defaultPath()

    static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let path = environment["COX_CONFIG"], !path.isEmpty { return path }
        let fm = FileManager.default
        return !fm.fileExists(atPath: "cox.yaml") && fm.fileExists(atPath: packagedConfig) ? packagedConfig : "cox.yaml"
    }

    /// Run as root against a state directory that belongs to the daemon's user, `cox` becomes
    /// that user first, so the database and its WAL stay the daemon's. Mutations push the
    /// nodes they touch after commit (`CommandEffects`) unless `pushing` is false (a batch
    /// that pushes once at the end).
    func open(pushing: Bool = true) throws -> Controller {
        let controller: Controller
        do {
            try Controller.adoptStateOwner(configPath: config)
            controller = try Controller.open(configPath: config)
        } catch {
            throw CommandFailure(description: "\(error)")
        }
        return pushing ? controller.with(effects: CommandEffects(controller: controller, logger: CoxLogging.cli)) : controller
    }
}

/// A runtime failure: printed as `Error: <sentence>` without the usage text.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
}

/// Errors from the library already carry a sentence; print it without a stack of types.
func userFacing<T>(_ body: () async throws -> T) async throws -> T {
    do { return try await body() } catch let error as ValidationError {
        throw error
    } catch let error as ExitCode {
        throw error
    } catch let error as CommandFailure {
        throw error
    } catch {
        throw CommandFailure(description: "\(error)")
    }
}
