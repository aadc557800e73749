import ArgumentParser
import Coxswain
import Foundation

/// `cox tokens`: API tokens for the admin API (`Authorization: Bearer cox_…`), shown once.
struct TokensCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokens", abstract: "Create, list and revoke API tokens for the admin API.",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token; its secret is printed once and never stored.")
        @Argument(help: "A name for the token (unique among live tokens).") var name: String
        @Option(help: "readonly (GET), monitor (+ live events, sessions, alerts, metrics) or admin (+ every change).")
        var scope = "readonly"
        @Option(help: "Lifetime: 30d, 12h, 90m or never.") var expires = "90d"
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                guard let scope = TokenScope(rawValue: scope) else {
                    throw ValidationError("--scope must be readonly, monitor or admin")
                }
                let admin = AdminService(fleet: try options.open().service)
                let created = try await admin.createToken(name: name, scope: scope, lifetime: try AdminService.parseLifetime(expires),
                                                          by: .cliUser)
                FileHandle.standardError.write(Data("token \(created.token.id) (\(scope.rawValue)); copy it now, it is not shown again:\n".utf8))
                print(created.secret)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens (never their secrets).")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let tokens = try await AdminService(fleet: try options.open().service).tokens()
                let formatter = ISO8601DateFormatter()
                func time(_ micros: Int64?) -> String { micros.map { formatter.string(from: StoreClock.date($0)) } ?? "-" }
                let now = StoreClock.now()
                print(Table.render(header: ["ID", "NAME", "SCOPE", "PREFIX", "STATE", "EXPIRES", "LAST USED", "CREATED BY"], rows: tokens.map {
                    let state = $0.revokedAt != nil ? "revoked" : ($0.expiresAt.map { $0 <= now } ?? false) ? "expired" : "active"
                    return [$0.id, $0.name, $0.scope.rawValue, $0.prefix + "…", state, $0.expiresAt == nil ? "never" : time($0.expiresAt),
                            time($0.lastUsedAt), $0.createdBy]
                }))
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token at once (by ID or name).")
        @Argument(help: "Token ID or name.") var token: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let revoked = try await AdminService(fleet: try options.open().service).revokeToken(token, by: .cliUser)
                print("revoked \(revoked.id) (\(revoked.name))")
            }
        }
    }
}
