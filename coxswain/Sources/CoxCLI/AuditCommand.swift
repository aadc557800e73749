import ArgumentParser
import Coxswain
import Foundation

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Show the audit log, newest first, or verify its hash chain.",
        subcommands: [Show.self, Verify.self], defaultSubcommand: Show.self)

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show audit rows, newest first.")
        @Option(help: "Action, or an action prefix (node matches node.add, node.rm ...).") var action: String?
        @Option(help: "Actor name.") var actor: String?
        @Option(help: "Target ID or type.") var target: String?
        @Option(help: "Only rows at or after this time (RFC 3339, e.g. 2026-11-25T10:00:00Z).") var since: String?
        @Option(help: "At most this many rows (cap 1000).") var limit = 100
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                var sinceMicros: Int64?
                if let since {
                    guard let date = ISO8601DateFormatter().date(from: since) else {
                        throw ValidationError("--since \(since) is not an RFC 3339 time such as 2026-11-25T10:00:00Z")
                    }
                    sinceMicros = Int64(date.timeIntervalSince1970 * 1_000_000)
                }
                let query = AuditQuery(action: action, actor: actor, target: target, since: sinceMicros, limit: limit)
                let rows = try await options.open().store.read { tx in try tx.auditRows(query) }
                let formatter = ISO8601DateFormatter()
                print(Table.render(header: ["AT", "ACTOR", "ACTION", "TARGET", "RESULT", "DETAIL"], rows: rows.map {
                    [formatter.string(from: StoreClock.date($0.at)), "\($0.actor) (\($0.actorKind))", $0.action,
                     $0.targetID.isEmpty ? $0.targetType : $0.targetID, $0.result + ($0.error.isEmpty ? "" : ": \($0.error)"), $0.detail]
                }))
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Walk the hash chain oldest to newest; name the first broken row.")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let check = try await userFacing { try await options.open(pushing: false).service.verifyAudit() }
            if let broken = check.broken {
                print("audit chain BROKEN: \(broken)")
                throw ExitCode(1)
            }
            print("audit chain intact: \(check.rows) rows")
        }
    }
}
