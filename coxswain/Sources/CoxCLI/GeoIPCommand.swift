import ArgumentParser
import Coxswain
import Foundation
import PharosRuntime

/// `cox geoip`: the database the GeoIP rules (`impossible_travel`, `new_geo`) read, a lookup
/// through it, and installing a new one. `cox serve` picks a replaced file up at its next
/// sweep, without a restart.
struct GeoIPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "geoip", abstract: "Show the GeoIP database in use, look an address up, install a new database.",
        subcommands: [Show.self, Lookup.self, Update.self], defaultSubcommand: Show.self)

    static func database(_ options: ConfigOption) throws -> GeoIPDatabase {
        let path = try options.open().config.geoipDB
        guard !path.isEmpty else {
            throw CommandFailure(description: "no GeoIP database: set geoip_db in cox.yaml (a GeoLite2-City or DB-IP City Lite .mmdb), then cox geoip update --from FILE")
        }
        return try GeoIPDatabase(path: path)
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The database geoip_db names: type, build date, size.")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let database = try GeoIPCommand.database(options)
                let meta = database.metadata
                let built = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(meta.buildEpoch)))
                print("""
                    path         \(database.path)
                    type         \(meta.databaseType)
                    built        \(built)
                    ip version   \(meta.ipVersion)
                    nodes        \(meta.nodeCount)
                    description  \(meta.description)
                    """)
            }
        }
    }

    struct Lookup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Where the database places an address.")
        @Argument(help: "An IPv4 or IPv6 address.") var address: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let database = try GeoIPCommand.database(options)
                guard let location = try database.lookup(address) else {
                    print("\(address): not in the database")
                    return
                }
                let coordinates = location.latitude.flatMap { lat in location.longitude.map { "\(lat), \($0)" } } ?? "no coordinates"
                print("\(address): \(location.place) (\(coordinates))")
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Install a downloaded .mmdb as geoip_db, after checking that it opens.",
            discussion: "Download GeoLite2-City (MaxMind, free account) or DB-IP City Lite (CC-BY-4.0) yourself: the download URL of MaxMind carries a licence key, which cox keeps off its command line. The file replaces geoip_db atomically; a running cox serve uses it from its next sweep.")
        @Option(help: "The downloaded .mmdb file.") var from: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let target = try options.open().config.geoipDB
                guard !target.isEmpty else { throw CommandFailure(description: "set geoip_db in cox.yaml first (e.g. geoip_db: geoip.mmdb)") }
                let meta: GeoIPDatabase.Metadata
                do { meta = try GeoIPDatabase(path: from).metadata } catch { throw CommandFailure(description: "not installed: \(error)") }
                try AtomicFile.write(Array(try Data(contentsOf: URL(fileURLWithPath: from))), to: target, mode: 0o644)
                print("installed \(meta.databaseType) (\(meta.nodeCount) nodes) as \(target)")
            }
        }
    }
}
