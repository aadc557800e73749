import Foundation
import Testing
@testable import Coxswain

/// The Tier 1 rules that need no GeoIP, on recorded event sequences, and the sweep over a real
/// SQLite store: one alert per device and rule, refreshed in place, not reopened by the
/// evidence an operator resolved it on.
@Suite struct AnomalyTests {
    static let minute: Int64 = 60_000_000
    static let t0: Int64 = 1_800_000_000_000_000

    static func event(_ minutes: Double, _ type: String = "connect", ip: String, node: String = "node_a",
                      peer: String = "peer_1", device: String? = "dev_1") -> ConnectionEventRecord {
        ConnectionEventRecord(id: "ev_\(UUID().uuidString.prefix(8))", at: t0 + Int64(minutes * Double(minute)), nodeID: node, peerID: peer,
                              deviceID: device, userID: device == nil ? nil : "usr_1", protocol: "amneziawg", eventType: type,
                              sourceIP: ip, sourceEndpoint: ip.isEmpty ? "" : "\(ip):51820", rxBytes: 0, txBytes: 0, reason: "")
    }

    @Test func oneKeyFromTwoAddressesWithinTheWindowIsALeakedProfile() throws {
        let settings = AnomalySettings()
        let roaming = (0..<5).map { Self.event(Double($0) * 2, ip: "198.51.100.7") }
        #expect(AnomalyRules.leakedProfile(roaming, settings: settings) == nil, "one address reconnecting is not a leak")

        let leak = [Self.event(0, ip: "198.51.100.7"), Self.event(1, "handshake", ip: "198.51.100.7"),
                    Self.event(3, ip: "203.0.113.9", node: "node_b")]
        let finding = try #require(AnomalyRules.leakedProfile(leak, settings: settings))
        #expect(finding.kind == "leaked_profile" && finding.severity == .critical && finding.dedupKey == "leaked_profile:dev_1")
        #expect(finding.sourceIPs == ["198.51.100.7", "203.0.113.9"] && finding.lastSeen == Self.t0 + 3 * Self.minute)
        #expect(finding.detail["within_seconds"] == "180" && finding.detail["nodes"] == "node_a,node_b")

        let apart = [Self.event(0, ip: "198.51.100.7"), Self.event(11, ip: "203.0.113.9")]
        #expect(AnomalyRules.leakedProfile(apart, settings: settings) == nil, "a move 11 minutes later is not within 10")
        let disconnectOnly = [Self.event(0, ip: "198.51.100.7"), Self.event(2, "disconnect", ip: "203.0.113.9")]
        #expect(AnomalyRules.leakedProfile(disconnectOnly, settings: settings) == nil, "a disconnect is not a connection")

        var three = AnomalySettings()
        three.leakedProfileMinIPs = 3
        #expect(AnomalyRules.leakedProfile(leak, settings: three) == nil)
        #expect(AnomalyRules.leakedProfile(leak + [Self.event(5, ip: "192.0.2.4")], settings: three)?.sourceIPs.count == 3)
    }

    @Test func sessionsOpenOnTwoNodesAtOnceAreConcurrent() {
        let settings = AnomalySettings()
        let sequential = [Self.event(0, ip: "198.51.100.7"), Self.event(20, "disconnect", ip: "198.51.100.7"),
                          Self.event(21, ip: "198.51.100.7", node: "node_b")]
        #expect(AnomalyRules.concurrentSessions(sequential, settings: settings) == nil)

        let skewed = [Self.event(0, ip: "198.51.100.7"), Self.event(10, ip: "198.51.100.7", node: "node_b"),
                      Self.event(10.5, "disconnect", ip: "198.51.100.7")]
        #expect(AnomalyRules.concurrentSessions(skewed, settings: settings) == nil, "30 s of overlap is clock skew")

        let overlapping = [Self.event(0, ip: "198.51.100.7"), Self.event(5, ip: "203.0.113.9", node: "node_b"),
                           Self.event(10, "disconnect", ip: "198.51.100.7")]
        let finding = AnomalyRules.concurrentSessions(overlapping, settings: settings)
        #expect(finding?.kind == "concurrent_sessions" && finding?.severity == .warning && finding?.detail["nodes"] == "node_a,node_b")
        #expect(finding?.detail["overlap_seconds"] == "300" && finding?.sourceIPs == ["198.51.100.7", "203.0.113.9"])

        // A connect never closed counts as open for 30 minutes after its last sign of life.
        let stale = [Self.event(0, ip: "198.51.100.7"), Self.event(40, ip: "203.0.113.9", node: "node_b")]
        #expect(AnomalyRules.concurrentSessions(stale, settings: settings) == nil)
        let kept = [Self.event(0, ip: "198.51.100.7"), Self.event(25, "handshake", ip: "198.51.100.7"),
                    Self.event(40, ip: "203.0.113.9", node: "node_b")]
        #expect(AnomalyRules.concurrentSessions(kept, settings: settings) != nil, "a handshake at 25 keeps it open past 40")
        // Two protocols of one device on one node are one place.
        let sameNode = [Self.event(0, ip: "198.51.100.7"), Self.event(5, ip: "198.51.100.7", peer: "peer_2")]
        #expect(AnomalyRules.concurrentSessions(sameNode, settings: settings) == nil)
    }

    @Test func theSweepRaisesOneAlertPerDeviceAndDoesNotReopenWhatWasResolved() async throws {
        let state = try TestState()
        let minute = Self.minute
        func insert(_ minutesAgo: Int64, ip: String, device: String?) throws {
            let now = StoreClock.now()
            try state.store.executeRawForTesting("""
                INSERT INTO connection_events (id, at, node_id, peer_id, device_id, user_id, protocol, event_type, source_ip)
                VALUES (?, ?, 'node_a', 'peer_1', ?, NULL, 'amneziawg', 'connect', ?)
                """, ["ev_\(UUID().uuidString.prefix(8))", now - minutesAgo * minute, device, ip])
        }
        try insert(9, ip: "198.51.100.7", device: "dev_1")
        try insert(8, ip: "203.0.113.9", device: "dev_1")
        try insert(8, ip: "192.0.2.1", device: nil)  // a peer no device owns any more
        try insert(7, ip: "192.0.2.2", device: nil)
        try insert(30 * 60, ip: "192.0.2.3", device: "dev_2")  // outside the 24 h window
        try insert(7, ip: "192.0.2.4", device: "dev_2")
        let window = 24 * 60 * minute

        let opened = try await AnomalyEngine.sweep(state.store, settings: AnomalySettings(), window: window)
        #expect(opened.map(\.dedupKey) == ["leaked_profile:dev_1"], "\(opened.map(\.dedupKey))")
        let alert = try #require(opened.first)
        #expect(alert.deviceID == "dev_1" && alert.sourceIPs == #"["198.51.100.7","203.0.113.9"]"#, "\(alert.sourceIPs)")
        #expect(try await AnomalyEngine.sweep(state.store, settings: AnomalySettings(), window: window).isEmpty, "refreshed, not reopened")

        _ = try await state.service.setAlertStatus(alert.id, to: .resolved, expectedVersion: nil, by: state.actor)
        #expect(try await AnomalyEngine.sweep(state.store, settings: AnomalySettings(), window: window).isEmpty,
                "the evidence it was resolved on opened it again")
        try await Task.sleep(for: .milliseconds(5))
        try insert(0, ip: "192.0.2.99", device: "dev_1")
        let again = try await AnomalyEngine.sweep(state.store, settings: AnomalySettings(), window: window)
        #expect(again.map(\.dedupKey) == ["leaked_profile:dev_1"] && again.first?.id != alert.id, "newer evidence opens a new alert")

        var off = AnomalySettings()
        off.leakedProfile = false
        try insert(0, ip: "192.0.2.5", device: "dev_3")
        try insert(0, ip: "192.0.2.6", device: "dev_3")
        #expect(try await AnomalyEngine.sweep(state.store, settings: off, window: window).isEmpty, "a disabled rule raised an alert")
    }
}
