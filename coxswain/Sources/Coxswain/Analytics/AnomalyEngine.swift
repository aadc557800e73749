import Foundation
import PharosSpec

/// `cox serve`'s anomaly sweep (upstream's engine, reference §7): every
/// `analytics.interval_seconds` it reads the last `analytics.window_hours` of connection
/// events of known devices (and failed admin logins) and runs the enabled rules. A finding opens its alert
/// or refreshes the open one; security findings never resolve themselves (an operator
/// resolves them, `cox alerts resolve`), and a resolved alert is not reopened by the evidence
/// it was resolved on, only by newer events.
public enum AnomalyEngine {
    /// The alerts it opened.
    @discardableResult
    public static func sweep(_ store: Store, settings: AnomalySettings, window: Int64, now: Int64 = StoreClock.now(),
                             geo: GeoIPDatabase? = nil) async throws -> [AlertRecord] {
        var evidence = try await store.read { tx in try tx.anomalyEvidence(since: now - window, settings: settings) }
        if let geo, settings.impossibleTravel || settings.newGeo {
            for address in Set(evidence.events.map(\.sourceIP)) where !address.isEmpty {
                if let location = try? geo.lookup(address) { evidence.locations[address] = location }
            }
        }
        let findings = Self.findings(evidence, settings: settings)
        let countries = settings.newGeo ? evidence.events.compactMap { event -> (deviceID: String, country: String, at: Int64)? in
            guard event.eventType != "disconnect", let device = event.deviceID, let country = evidence.locations[event.sourceIP]?.country, !country.isEmpty,
                  evidence.knownCountries[device]?.contains(country) != true else { return nil }
            return (device, country, event.at)
        } : []
        guard !findings.isEmpty || !countries.isEmpty else { return [] }
        return try await store.write { tx in
            try tx.recordDeviceCountries(countries)
            var opened: [AlertRecord] = []
            for finding in findings {
                if let resolved = try tx.lastResolvedAt(dedupKey: finding.dedupKey), finding.lastSeen <= resolved { continue }
                let (alert, isNew) = try tx.raiseAlert(kind: finding.kind, severity: finding.severity, dedupKey: finding.dedupKey,
                                                       nodeID: finding.nodeID, deviceID: finding.deviceID, userID: finding.userID,
                                                       sourceIPs: finding.sourceIPs, detail: FleetService.detail(finding.detail))
                if isNew { opened.append(alert) }
            }
            return opened
        }
    }

    /// Every enabled rule: the device rules over each device's events, then the address rules.
    public static func findings(_ evidence: AnomalyEvidence, settings: AnomalySettings) -> [AnomalyFinding] {
        let byDevice = Dictionary(grouping: evidence.events.filter { $0.deviceID != nil }, by: { $0.deviceID ?? "" })
        let perDevice = byDevice.keys.sorted().flatMap { device -> [AnomalyFinding] in
            let history = byDevice[device] ?? []
            var found = [
                settings.leakedProfile ? AnomalyRules.leakedProfile(history, settings: settings) : nil,
                settings.concurrentSessions ? AnomalyRules.concurrentSessions(history, settings: settings) : nil,
                settings.dormantThenActive ? AnomalyRules.dormantThenActive(history, settings: settings) : nil,
            ].compactMap { $0 }
            if settings.revokedProfileActive, let removedAt = evidence.removedAt[device],
               let finding = AnomalyRules.revokedProfileActive(history, removedAt: removedAt, settings: settings) {
                found.append(finding)
            }
            if settings.offHoursAccess, let before = evidence.connectHours[device] {
                found += AnomalyRules.offHoursAccess(history, before: before, settings: settings)
            }
            if settings.impossibleTravel,
               let finding = AnomalyRules.impossibleTravel(history, locations: evidence.locations, settings: settings) {
                found.append(finding)
            }
            if settings.newGeo {
                found += AnomalyRules.newGeo(history, locations: evidence.locations, known: evidence.knownCountries[device] ?? [])
            }
            if settings.dataVolume, let uploads = evidence.sessionUploads[device],
               let finding = AnomalyRules.dataVolume(history, uploads: uploads, settings: settings) {
                found.append(finding)
            }
            return found
        }
        return perDevice + (settings.authFailureSpike ? AnomalyRules.authFailureSpikes(evidence.failedLogins, settings: settings) : [])
    }
}
