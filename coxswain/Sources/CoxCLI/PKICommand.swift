import ArgumentParser
import Coxswain
import Foundation

struct PKICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pki", abstract: "Inspect the fleet's certificates.", subcommands: [Status.self])

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List every certificate the fleet stands on (CAs, controller, nodes, relays, devices), soonest expiry first.",
            discussion: """
                STATE is valid, expiring (in the last fifth of its life: renew it), expired or revoked. \
                Certificates that expired or were revoked more than 30 days ago are left out unless --all is given. \
                The embedded relay's leaf lives in memory only and is not listed.
                """)
        @Flag(help: "Also list certificates that expired more than 30 days ago.") var all = false
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let controller = try options.open()
                let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
                let entries = try await controller.store.read { tx in try tx.certificateInventory() }
                let shown = all ? entries : entries.filter { $0.notAfter > now - 30 * 86_400_000_000 }
                print(Table.render(header: ["KIND", "NAME", "SERIAL", "NOT AFTER", "LEFT", "STATE"], rows: shown.map { entry in
                    [entry.kind.rawValue, entry.name, String(entry.serial.prefix(16)), Self.date(entry.notAfter),
                     Self.left(entry.notAfter - now), entry.state(at: now).rawValue]
                }))
                let counts = Dictionary(grouping: shown, by: { $0.state(at: now) }).mapValues(\.count)
                print("\(shown.count) certificates: " + [CertificateEntry.State.valid, .expiring, .expired, .revoked]
                    .map { "\(counts[$0, default: 0]) \($0.rawValue)" }.joined(separator: ", "))
            }
        }

        static func date(_ micros: Int64) -> String {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withFullDate]
            return formatter.string(from: Date(timeIntervalSince1970: Double(micros) / 1_000_000))
        }

        /// "364d", "5h", or "-3d" once expired.
        static func left(_ micros: Int64) -> String {
            let seconds = micros / 1_000_000
            if abs(seconds) >= 86_400 { return "\(seconds / 86_400)d" }
            return "\(seconds / 3600)h"
        }
    }
}
