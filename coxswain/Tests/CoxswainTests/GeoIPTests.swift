import Foundation
import PharosProto
import PharosTestSupport
import Testing
@testable import Coxswain

/// GeoIP through libmaxminddb, on a database written by the tests' own stdlib-only writer
/// (`Tests/GeoIP/write_mmdb.py`: documentation networks in New York, Sydney, Berlin and
/// Potsdam); the GeoIP rules on sequences and through the sweep on SQLite.
@Suite struct GeoIPTests {
    static let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Writes the test database to `path`.
    static func writeDatabase(to path: String) throws {
        let written = try Tool.run("/usr/bin/python3", [package.appendingPathComponent("Tests/GeoIP/write_mmdb.py").path, path])
        try #require(written.status == 0, "write_mmdb.py failed: \(written.output)")
    }

    static func database() throws -> (GeoIPDatabase, String) {
        let path = "/tmp/geoip-\(UUID().uuidString.prefix(8)).mmdb"
        try writeDatabase(to: path)
        return (try GeoIPDatabase(path: path), path)
    }

    @Test func addressesArePlacedAndAHostileFileIsRefusedWithItsReason() throws {
        let (database, path) = try Self.database()
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(database.metadata.databaseType == "PharosTest-City" && database.metadata.ipVersion == 4)
        let newYork = try #require(try database.lookup("198.51.100.7"))
        #expect(newYork.country == "US" && newYork.city == "New York" && newYork.latitude == 40.7128 && newYork.longitude == -74.006)
        #expect(try database.lookup("192.0.2.200")?.city == "Potsdam", "the longer prefix inside Berlin's /24")
        #expect(try database.lookup("192.0.2.5")?.city == "Berlin")
        #expect(try database.lookup("8.8.8.8") == nil)
        #expect(throws: GeoIPError.badAddress("not-an-address")) { try database.lookup("not-an-address") }

        let sydney = try #require(try database.lookup("203.0.113.9"))
        let km = try #require(newYork.kilometres(to: sydney))
        #expect(abs(km - 15_990) < 30, "New York–Sydney is about 15,990 km, not \(km)")
        let berlin = try #require(try database.lookup("192.0.2.5")), potsdam = try #require(try database.lookup("192.0.2.200"))
        #expect(abs((berlin.kilometres(to: potsdam) ?? 0) - 27) < 3)

        // A file that is not a database, and a database cut short, are refused at open.
        let hostile = "\(path).hostile"
        try Data((0..<4096).map { _ in UInt8.random(in: 0...255) }).write(to: URL(fileURLWithPath: hostile))
        let truncated = "\(path).cut"
        try Data(try Data(contentsOf: URL(fileURLWithPath: path)).prefix(100)).write(to: URL(fileURLWithPath: truncated))
        defer { [hostile, truncated].forEach { try? FileManager.default.removeItem(atPath: $0) } }
        for bad in [hostile, truncated, "/nonexistent/geo.mmdb"] {
            do {
                _ = try GeoIPDatabase(path: bad)
                Issue.record("\(bad) opened")
            } catch {
                #expect(error.description.hasPrefix("geoip_db: cannot open \(bad)"), "\(error)")
            }
        }
    }

    static func placed(_ minutes: Double, ip: String, type: String = "connect") -> ConnectionEventRecord {
        AnomalyTests.event(minutes, type, ip: ip)
    }

    @Test func impossibleTravelAndNewGeoFollowThePlacesOfOneDevice() throws {
        let (database, path) = try Self.database()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var locations: [String: GeoLocation] = [:]
        for ip in ["198.51.100.7", "203.0.113.9", "192.0.2.5", "192.0.2.200"] { locations[ip] = try database.lookup(ip) }
        let settings = AnomalySettings()

        let jump = try #require(AnomalyRules.impossibleTravel([Self.placed(0, ip: "198.51.100.7"), Self.placed(60, ip: "203.0.113.9")],
                                                              locations: locations, settings: settings))
        #expect(jump.severity == .critical && jump.detail["from"] == "New York, US" && jump.detail["to"] == "Sydney, AU")
        #expect(jump.sourceIPs == ["198.51.100.7", "203.0.113.9"] && Int(jump.detail["kmh"] ?? "") ?? 0 > 15_000)
        #expect(AnomalyRules.impossibleTravel([Self.placed(0, ip: "198.51.100.7"), Self.placed(24 * 60, ip: "203.0.113.9")],
                                              locations: locations, settings: settings) == nil, "a day's flight is possible")
        #expect(AnomalyRules.impossibleTravel([Self.placed(0, ip: "192.0.2.5"), Self.placed(0.5, ip: "192.0.2.200")],
                                              locations: locations, settings: settings) == nil, "27 km is under 100 km")
        #expect(AnomalyRules.impossibleTravel([Self.placed(0, ip: "198.51.100.7"), Self.placed(60, ip: "203.0.113.9", type: "disconnect")],
                                              locations: locations, settings: settings) == nil, "a disconnect is no sign of where it is")

        let news = AnomalyRules.newGeo([Self.placed(0, ip: "198.51.100.7"), Self.placed(5, ip: "203.0.113.9"), Self.placed(9, ip: "203.0.113.9")],
                                       locations: locations, known: ["US"])
        #expect(news.map(\.dedupKey) == ["new_geo:dev_1:AU"] && news.first?.detail["known"] == "US")
        #expect(AnomalyRules.newGeo([Self.placed(0, ip: "198.51.100.7")], locations: locations, known: []).isEmpty,
                "a device's first country is its baseline")
        #expect(AnomalyRules.newGeo([Self.placed(0, ip: "8.8.8.8")], locations: locations, known: ["US"]).isEmpty, "unplaced")
    }

    /// The real recorder and sweep: New York, then Sydney half an hour later; the countries
    /// are remembered, so the next sweep is quiet and Germany later is news again.
    @Test func theSweepPlacesRecordedEventsAndRemembersCountries() async throws {
        let (database, path) = try Self.database()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let state = try TestState()
        let (node, device, peer) = try await state.deviceWithPeer()
        let recorder = ConnectionEventRecorder(nodeID: node.id, store: state.store)
        let now = StoreClock.now() / 1_000_000
        func connect(from address: String, second: Int64) async throws {
            var e = Pharos_Node_V1_Event()
            (e.type, e.protocol, e.peerID, e.sourceEndpoint) = (.peerConnected, .amneziawg, peer.id, "\(address):51000")
            e.at = .init(seconds: now + second, nanos: 0)
            try await recorder.ingest(e)
        }
        try await connect(from: "198.51.100.7", second: -3600)
        try await connect(from: "203.0.113.9", second: -1800)
        let window: Int64 = 86_400_000_000
        var geoOnly = AnomalySettings()
        geoOnly.leakedProfile = false
        geoOnly.concurrentSessions = false
        #expect(try await AnomalyEngine.sweep(state.store, settings: geoOnly, window: window).isEmpty, "without a database, no GeoIP rule")
        let opened = try await AnomalyEngine.sweep(state.store, settings: geoOnly, window: window, geo: database)
        #expect(Set(opened.map(\.dedupKey)) == ["impossible_travel:\(device.id)", "new_geo:\(device.id):AU"], "\(opened.map(\.dedupKey))")
        let known = try await state.store.read { tx in try tx.sql.values(String.self, "SELECT country FROM device_countries ORDER BY country") }
        #expect(known == ["AU", "US"])
        #expect(try await AnomalyEngine.sweep(state.store, settings: geoOnly, window: window, geo: database).isEmpty, "refreshed, nothing new")
        try await connect(from: "192.0.2.5", second: 0)
        let later = try await AnomalyEngine.sweep(state.store, settings: geoOnly, window: window, geo: database)
        #expect(later.map(\.dedupKey).contains("new_geo:\(device.id):DE"), "\(later.map(\.dedupKey))")
    }
}
