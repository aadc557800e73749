import Foundation
import PharosProto
import Testing
@testable import Coxswain

/// Upstream's Tier 2 rules: on recorded sequences (each with the case just past its threshold
/// that must stay quiet), and through the real recorder, admin logins and sweep on SQLite.
@Suite struct AnomalyTier2Tests {
    static let minute = AnomalyTests.minute, t0 = AnomalyTests.t0
    static let day = 1440 * minute

    static func event(_ minutes: Double, _ type: String = "connect", ip: String = "198.51.100.7", node: String = "node_a",
                      rx: Int64 = 0, previous: Int64? = nil) -> ConnectionEventRecord {
        var e = AnomalyTests.event(minutes, type, ip: ip, node: node)
        e.rxBytes = rx
        e.previousSeenAt = previous
        return e
    }

    @Test func aRemovedDevicesKeyLetInAfterTheGraceIsRevokedProfileActive() throws {
        let settings = AnomalySettings()
        #expect(AnomalyRules.revokedProfileActive([Self.event(1.5)], removedAt: Self.t0, settings: settings) == nil,
                "within the 120 s the push has, the node may not have it yet")
        #expect(AnomalyRules.revokedProfileActive([Self.event(5, "disconnect")], removedAt: Self.t0, settings: settings) == nil,
                "a disconnect is the removal arriving, not the key in use")
        let finding = try #require(AnomalyRules.revokedProfileActive([Self.event(1.5), Self.event(3, "handshake", node: "node_b")],
                                                                       removedAt: Self.t0, settings: settings))
        #expect(finding.kind == "revoked_profile_active" && finding.severity == .critical && finding.nodeID == "node_b")
        #expect(finding.detail["nodes"] == "node_b" && finding.dedupKey == "revoked_profile_active:dev_1")
    }

    @Test func fiveFailedLoginsFromOneAddressWithinTenMinutesAreASpike() {
        let settings = AnomalySettings()
        func failures(_ minutes: [Double], from ip: String) -> [AnomalyEvidence.FailedLogin] {
            minutes.map { .init(at: Self.t0 + Int64($0 * Double(Self.minute)), sourceIP: ip, account: "u\($0)@example.com") }
        }
        #expect(AnomalyRules.authFailureSpikes(failures([0, 1, 2, 3], from: "192.0.2.1"), settings: settings).isEmpty)
        #expect(AnomalyRules.authFailureSpikes(failures([0, 3, 6, 9, 12, 15], from: "192.0.2.1"), settings: settings).isEmpty,
                "six over 15 minutes is never five within ten")
        #expect(AnomalyRules.authFailureSpikes(failures([0, 1, 2, 3, 4], from: ""), settings: settings).isEmpty,
                "a failure without an address (the CLI) is nobody's spike")
        let mixed = (failures([0, 1, 2, 3], from: "192.0.2.1") + failures([2, 4], from: "192.0.2.2")
            + failures([9], from: "192.0.2.1")).sorted { $0.at < $1.at }
        let found = AnomalyRules.authFailureSpikes(mixed, settings: settings)
        #expect(found.map(\.dedupKey) == ["auth_failure_spike:192.0.2.1"] && found.first?.deviceID == nil)
        #expect(found.first?.detail["failures"] == "5" && found.first?.detail["accounts"] == "5" && found.first?.sourceIPs == ["192.0.2.1"])
    }

    @Test func aConnectAfterThirtyIdleDaysIsDormantThenActive() throws {
        let settings = AnomalySettings()
        #expect(AnomalyRules.dormantThenActive([Self.event(0, previous: Self.t0 - 29 * Self.day)], settings: settings) == nil)
        #expect(AnomalyRules.dormantThenActive([Self.event(0)], settings: settings) == nil, "a first connect ever is not a return")
        let finding = try #require(AnomalyRules.dormantThenActive([Self.event(0, previous: Self.t0 - 31 * Self.day)], settings: settings))
        #expect(finding.severity == .info && finding.detail["idle_days"] == "31")
    }

    @Test func aConnectInAnHourTheDeviceNeverUsesIsOffHoursOncePerDay() throws {
        let settings = AnomalySettings()
        // 20 connects over 10 days, all between 09:00 and 17:00 UTC (t0 is 08:00 UTC).
        #expect(AnomalyEvidence.HourCounts.hour(Self.t0) == 8)
        var office = AnomalyEvidence.HourCounts()
        for i in 0..<20 { office.add(Self.t0 - Int64(10 - i / 2) * Self.day + Int64(60 + (i % 8) * 60) * Self.minute) }
        let night = Self.event(19 * 60)  // 03:00 UTC the next day
        // 03:00 and 04:00 that day each qualify on their own (an hour never used), 05:00 the
        // day after too: two alerts, the first day's refreshed by its later connect.
        let found = AnomalyRules.offHoursAccess([night, Self.event(20 * 60), Self.event(45 * 60)], before: office, settings: settings)
        #expect(found.count == 2, "one alert per device and day: \(found.map(\.dedupKey))")
        #expect(found.first?.detail["hour_utc"] == "4" && found.first?.dedupKey.hasSuffix(":2027-01-16") == true,
                "\(found.map(\.dedupKey))")
        #expect(found.last?.detail["hour_utc"] == "5" && found.last?.dedupKey.hasSuffix(":2027-01-17") == true)
        #expect(AnomalyRules.offHoursAccess([night, Self.event(19 * 60 + 30)], before: office, settings: settings).count == 1,
                "03:30 after 03:00 is an hour used once in 21: not off hours")
        #expect(AnomalyRules.offHoursAccess([Self.event(2 * 60)], before: office, settings: settings).isEmpty, "10:00 is office hours")

        var short = AnomalyEvidence.HourCounts()
        for i in 0..<19 { short.add(Self.t0 - 10 * Self.day + Int64(i) * Self.day / 2) }
        #expect(AnomalyRules.offHoursAccess([night], before: short, settings: settings).isEmpty, "19 earlier connects are no baseline")
        var recent = AnomalyEvidence.HourCounts()
        for i in 0..<20 { recent.add(Self.t0 - 6 * Self.day + Int64(i) * Self.minute) }
        #expect(AnomalyRules.offHoursAccess([night], before: recent, settings: settings).isEmpty, "6 days are no baseline")
    }

    @Test func aSessionUploadingTenTimesTheMedianAndOverAGibibyteIsDataVolume() throws {
        let settings = AnomalySettings()
        let mib: Int64 = 1 << 20
        let usual = (0..<20).map { AnomalyEvidence.SessionUpload(at: Self.t0 - Int64(20 - $0) * Self.day, bytes: 50 * mib) }
        let big = Self.event(0, "disconnect", rx: 2048 * mib)
        let finding = try #require(AnomalyRules.dataVolume([big], uploads: usual + [.init(at: big.at, bytes: big.rxBytes)], settings: settings))
        #expect(finding.detail["median_bytes"] == "\(50 * mib)" && finding.detail["sessions_before"] == "20")
        #expect(AnomalyRules.dataVolume([big], uploads: Array(usual.dropFirst()), settings: settings) == nil, "19 sessions are no baseline")
        let heavy = usual.map { AnomalyEvidence.SessionUpload(at: $0.at, bytes: 300 * mib) }
        #expect(AnomalyRules.dataVolume([big], uploads: heavy, settings: settings) == nil, "under 10 times a 300 MiB median")
        #expect(AnomalyRules.dataVolume([Self.event(0, "disconnect", rx: 1000 * mib)], uploads: usual, settings: settings) == nil,
                "under 1 GiB")
    }

    /// The history rules read their baselines from SQLite: 20 office-hours sessions of 50 MiB
    /// over ten days through the real recorder, then a 2 GiB session at an hour never used.
    @Test func offHoursAndDataVolumeReadTheirBaselineFromRecordedSessions() async throws {
        let state = try TestState()
        let (node, device, peer) = try await state.deviceWithPeer()
        let recorder = ConnectionEventRecorder(nodeID: node.id, store: state.store)
        let mib: Int64 = 1 << 20
        var counter: Int64 = 0
        // Midnight UTC today, from the wall clock (the sweep's window ends now).
        let today = StoreClock.now() / 86_400_000_000 * 86_400
        func session(startingAt second: Int64, uploading bytes: Int64) async throws {
            for (type, at) in [(Pharos_Node_V1_EventType.peerConnected, second), (.peerDisconnected, second + 1200)] {
                var e = Pharos_Node_V1_Event()
                (e.type, e.protocol, e.peerID, e.sourceEndpoint) = (type, .amneziawg, peer.id, "198.51.100.7:51000")
                if type == .peerDisconnected { counter += bytes }
                (e.at, e.rxBytes, e.txBytes) = (.init(seconds: at, nanos: 0), counter, 0)
                try await recorder.ingest(e)
            }
        }
        for day in 0..<10 {
            for hour: Int64 in [10, 14] { try await session(startingAt: today - Int64(12 - day) * 86_400 + hour * 3600, uploading: 50 * mib) }
        }
        var settings = AnomalySettings()
        (settings.leakedProfile, settings.concurrentSessions, settings.dormantThenActive) = (false, false, false)
        let day: Int64 = 86_400_000_000
        #expect(try await AnomalyEngine.sweep(state.store, settings: settings, window: day).isEmpty, "office hours raised something")
        // Two hours ago (three when that is one of the office hours): inside the window, in an
        // hour the device never used.
        var night = StoreClock.now() / 1_000_000 - 2 * 3600
        if [10, 14].contains(night / 3600 % 24) { night -= 3600 }
        try await session(startingAt: night, uploading: 2048 * mib)
        let opened = try await AnomalyEngine.sweep(state.store, settings: settings, window: day)
        #expect(Set(opened.map(\.kind)) == ["off_hours_access", "data_volume"], "\(opened.map(\.dedupKey))")
        let volume = try #require(opened.first { $0.kind == "data_volume" })
        #expect(volume.detail.contains("\"median_bytes\":\"\(50 * mib)\"") && volume.detail.contains("\"sessions_before\":\"20\""),
                "\(volume.detail)")
        #expect(opened.allSatisfy { $0.deviceID == device.id })
    }

    /// The real recorder on SQLite: a disconnect carries its session's bytes, a connect the
    /// device's previous activity, and a removed device's key resolves to it; the sweep turns
    /// that key working after the removal and failed admin logins into alerts.
    @Test func theRecorderAndTheSweepRaiseTier2AlertsFromRealRows() async throws {
        let state = try TestState()
        let (node, device, peer) = try await state.deviceWithPeer()
        let recorder = ConnectionEventRecorder(nodeID: node.id, store: state.store)
        let now = StoreClock.now() / 1_000_000
        func event(_ type: Pharos_Node_V1_EventType, second: Int64, rx: Int64 = 0, tx: Int64 = 0) -> Pharos_Node_V1_Event {
            var e = Pharos_Node_V1_Event()
            e.type = type
            e.protocol = .amneziawg
            e.peerID = peer.id
            e.sourceEndpoint = "203.0.113.5:51000"
            e.at = .init(seconds: now + second, nanos: 0)
            e.rxBytes = rx
            e.txBytes = tx
            return e
        }
        try await recorder.ingest(event(.peerConnected, second: -7200, rx: 1000, tx: 5000))
        try await recorder.ingest(event(.peerDisconnected, second: -7100, rx: 4000, tx: 9000))
        try await recorder.ingest(event(.peerConnected, second: -60, rx: 4000, tx: 9000))
        try await recorder.ingest(event(.peerDisconnected, second: -30, rx: 100, tx: 200))  // the node restarted
        let rows = try await state.store.read { tx in try tx.connectionEvents(node: node.id) }
        #expect(rows.map(\.rxBytes) == [1000, 3000, 4000, 100] && rows.map(\.txBytes) == [5000, 4000, 9000, 200],
                "a disconnect carries the session's bytes, or the whole counter after it went back")
        #expect(rows[0].previousSeenAt == nil && rows[2].previousSeenAt == (now - 7100) * 1_000_000 && rows[1].previousSeenAt == nil)

        _ = try await state.service.removeDevice(device.id, by: state.actor)
        try await recorder.ingest(event(.peerConnected, second: 1))  // the push is still on its way: not yet
        let quiet = try await AnomalyEngine.sweep(state.store, settings: AnomalySettings(), window: 86_400_000_000)
        #expect(!quiet.contains { $0.kind == "revoked_profile_active" }, "\(quiet.map(\.kind))")
        try await recorder.ingest(event(.peerConnected, second: 200))
        let late = try await state.store.read { tx in try tx.connectionEvents(node: node.id) }.last
        #expect(late?.deviceID == device.id && late?.userID == device.userID, "the removed key is still known as the device's")

        let admin = AdminService(fleet: state.service)
        for attempt in 0..<5 {
            await #expect(throws: AdminError.self) {
                _ = try await admin.login(email: "nobody\(attempt)@example.com", password: "wrong", sourceIP: "192.0.2.66")
            }
        }
        let opened = try await AnomalyEngine.sweep(state.store, settings: AnomalySettings(), window: 86_400_000_000,
                                                   now: (now + 300) * 1_000_000)
        #expect(Set(opened.map(\.dedupKey)) == ["revoked_profile_active:\(device.id)", "auth_failure_spike:192.0.2.66"],
                "\(opened.map(\.dedupKey))")
        let revoked = try #require(opened.first { $0.kind == "revoked_profile_active" })
        #expect(revoked.nodeID == node.id && revoked.severity == .critical && revoked.sourceIPs == #"["203.0.113.5"]"#)

        var off = AnomalySettings()
        off.revokedProfileActive = false
        off.authFailureSpike = false
        let settings = off
        let evidence = try await state.store.read { tx in try tx.anomalyEvidence(since: 0, settings: settings) }
        #expect(evidence.removedAt.isEmpty && evidence.failedLogins.isEmpty, "a disabled rule's history was read")
        #expect(AnomalyEngine.findings(evidence, settings: settings).isEmpty, "disabled rules found something")
    }
}
