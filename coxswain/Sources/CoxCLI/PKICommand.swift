import ArgumentParser
import Coxswain
import Foundation

struct PKICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pki", abstract: "Inspect the fleet's certificates; revoke a leaked controller leaf.",
        subcommands: [Status.self, Root.self, RevokeController.self])

    struct Root: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the fleet's root certificate (PEM): what a SIEM consumer of siem.listen trusts.",
            discussion: "Public: it holds no key. Its SHA-256 fingerprint is printed to stderr to compare out of band.")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let authority = try options.open().pki.authority
                print(try authority.root.certificate.pemString())
                fflush(nil)  // the PEM before the fingerprint line, also into one pipe
                FileHandle.standardError.write(Data("sha256 fingerprint: \(try authority.fingerprint)\n".utf8))
            }
        }
    }

    struct RevokeController: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "revoke-controller",
            abstract: "Replace the controller's leaf and make every node refuse the old one (it leaked).",
            discussion: """
                Every controller leaf still in date is revoked, not only the current one (the leaked one may have been \
                renewed since), and a fresh leaf replaces them. A running `cox serve` dials with it and sends every node \
                and relay the deny list within five minutes; they refuse the old leaves at the handshake from then on \
                (nodes also after a restart). Connections an old leaf already holds are not cut. Upstream agents take \
                no deny list: they accept an old leaf until it expires (at most a week).
                """)
        @Option(help: "Why, for the audit log.") var reason = "leaked"
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let controller = try options.open()
                let serials = try FleetPKI.revokeControllerLeaf(in: controller.store, reason: reason, by: .cliUser)
                print("revoked controller leaves \(serials.revoked.joined(separator: ", ")); the controller now uses \(serials.current)")
            }
        }
    }


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
            PKIFormat.day(Date(timeIntervalSince1970: Double(micros) / 1_000_000))
        }

        /// "364d", "5h", or "-3d" once expired.
        static func left(_ micros: Int64) -> String {
            let seconds = micros / 1_000_000
            if abs(seconds) >= 86_400 { return "\(seconds / 86_400)d" }
            return "\(seconds / 3600)h"
        }
    }
}

enum PKIFormat {
    /// "2026-12-03": the day a certificate expires or is due.
    static func day(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        return formatter.string(from: date)
    }
}
