import ArgumentParser
import Coxswain
import Foundation
import PharosRuntime

/// `cox alerts`: what `GET /api/alerts` and its ack/resolve routes do, from the controller
/// machine (audited as the CLI user). An open alert is refreshed in place while its
/// condition lasts; one whose condition ends resolves itself. As upstream, `cox alerts
/// [--status ...]` lists (`list` is the default subcommand).
struct AlertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts", abstract: "List, acknowledge and resolve alerts.",
        subcommands: [List.self, Ack.self, Resolve.self], defaultSubcommand: List.self)

    /// `ack` and `resolve`: audited as the CLI user; a stale `version` changes nothing.
    static func set(_ id: String, to status: AlertStatus, version: Int64?, options: ConfigOption) async throws {
        try await userFacing {
            let alert = try await options.open().service.setAlertStatus(id, to: status, expectedVersion: version, by: .cliUser)
            print("\(status.rawValue) \(alert.id) (\(alert.kind)), version \(alert.version)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List alerts, newest first (by default the unresolved ones).")
        @Option(help: "open, acknowledged, resolved, unresolved (open and acknowledged) or all.") var status = "unresolved"
        @Option(help: "Only this kind (fleet_health, certificate_expiry).") var kind: String?
        @Option(help: "info, warning or critical.") var severity: String?
        @Option(help: "Only this device's: its ID, or its name when only one device has it.") var device: String?
        @Option(help: "At most this many rows (1–1000).") var limit = 100
        @OptionGroup var options: ConfigOption

        func validate() throws {
            guard ["open", "acknowledged", "resolved", "unresolved", "all"].contains(status) else {
                throw ValidationError("--status must be open, acknowledged, resolved, unresolved or all, not \(status)")
            }
            if let severity, AlertSeverity(rawValue: severity) == nil {
                throw ValidationError("--severity must be info, warning or critical, not \(severity)")
            }
            guard (1...1000).contains(limit) else { throw ValidationError("--limit must be 1–1000, not \(limit)") }
        }

        func run() async throws {
            try await userFacing {
                let statuses: [AlertStatus?] = switch status {
                case "unresolved": [.open, .acknowledged]
                case "all": [nil]
                default: [AlertStatus(rawValue: status)]
                }
                let severity = self.severity.flatMap(AlertSeverity.init(rawValue:))
                let (kind, reference, limit) = (self.kind, self.device, self.limit)
                let alerts = try await options.open().store.read { tx in
                    let device = try reference.map { try Self.deviceID($0, among: try tx.devices()) }
                    return try statuses.flatMap { status in
                        try tx.alerts(AlertQuery(status: status, kind: kind, severity: severity, deviceID: device, limit: limit)).items
                    }
                }.sorted { ($0.at, $0.id) > ($1.at, $1.id) }.prefix(limit)
                let formatter = ISO8601DateFormatter()
                print(Table.render(header: ["ID", "LAST SEEN", "KIND", "SEVERITY", "STATUS", "VERSION", "DETAIL"], rows: alerts.map {
                    [$0.id, formatter.string(from: StoreClock.date($0.at)), $0.kind, $0.severity.rawValue, $0.status.rawValue,
                     "\($0.version)", Self.shortened($0.detail)]
                }))
            }
        }

        /// A device ID as given (a removed device's alerts stay listable by it), or the one
        /// device with that name.
        static func deviceID(_ reference: String, among devices: [DeviceRecord]) throws -> String {
            if devices.contains(where: { $0.id == reference }) || reference.hasPrefix("dev_") { return reference }
            let named = devices.filter { $0.name == reference }
            guard named.count <= 1 else {
                throw CommandFailure(description: "\(named.count) devices are named \(reference): give its ID (cox devices list)")
            }
            guard let device = named.first else {
                throw CommandFailure(description: "no device has the ID or name \(reference) (cox devices list)")
            }
            return device.id
        }

        /// The detail object on one line, cut at 100 characters.
        static func shortened(_ detail: String) -> String {
            detail.count > 100 ? String(detail.prefix(99)) + "…" : detail
        }
    }

    struct Ack: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Acknowledge an alert: someone is on it (it stays unresolved).")
        @Argument(help: "The alert's ID.") var id: String
        @Option(help: "Refuse unless the alert is still at this version (as listed), so a change made since is not overwritten.")
        var version: Int64?
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await AlertsCommand.set(id, to: .acknowledged, version: version, options: options)
        }
    }

    struct Resolve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Resolve an alert. A condition that still holds opens a new one.")
        @Argument(help: "The alert's ID.") var id: String
        @Option(help: "Refuse unless the alert is still at this version (as listed).") var version: Int64?
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await AlertsCommand.set(id, to: .resolved, version: version, options: options)
        }
    }
}
