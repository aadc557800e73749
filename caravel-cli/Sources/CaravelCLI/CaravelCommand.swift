import ArgumentParser
import CaravelCore
import Foundation
import PharosRuntime
import PharosSpec

@main
struct CaravelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "caravel",
        abstract: "PharosVPN caravel: the headless Linux client.",
        discussion: """
            Exit codes: 0 ok, 64 usage, 65 a bad file or link, 66 no such profile, 69 relay or controller unreachable,
            74 tunnel or I/O failure, 77 refused or not permitted.
            """,
        version: CaravelVersion.line,
        subcommands: [EnrollCommand.self, SyncCommand.self, ImportCommand.self, ListCommand.self, InspectCommand.self,
                      ConnectCommand.self, DownCommand.self, StatusCommand.self, RemoveCommand.self, LogoutCommand.self,
                      VersionCommand.self])
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

/// `--store`, shared by every command that reads or writes profiles.
struct StoreOption: ParsableArguments {
    @Option(name: .long, help: "The profile store (default: $CARAVEL_HOME, /var/lib/pharos/caravel as root, else ~/.config/PharosVPN/profiles).")
    var store: String?

    func open() throws -> ProfileStore {
        try ProfileStore(directory: store ?? ProfileStore.defaultDirectory())
    }
}

/// Prints `Error: <sentence>` and exits with the code the error means.
func failing<T>(_ body: () async throws -> T) async throws -> T {
    do { return try await body() } catch let error as CaravelError {
        FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
        throw ExitCode(error.exitCode)
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
        throw ExitCode(74)
    }
}

/// A secret from stdin (first line), never from argv or the environment; on a terminal,
/// prompted without echo.
func readSecret(prompt: String) -> [UInt8]? { SecretInput.readLine(prompt: prompt) }

func printJSON(_ value: JSONValue) {
    print(String(decoding: value.indentedBytes(), as: UTF8.self))
}
