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
    public static func sweep(_ store: Store, settings: AnomalySettings, window: Int64,
                             now: Int64 = StoreClock.now()) async throws -> [AlertRecord] {
        let evidence = try await store.read { tx in try tx.anomalyEvidence(since: now - window, settings: settings) }
        let findings = Self.findings(evidence, settings: settings)
        guard !findings.isEmpty else { return [] }
        return try await store.write { tx in
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
            if settings.dataVolume, let uploads = evidence.sessionUploads[device],
               let finding = AnomalyRules.dataVolume(history, uploads: uploads, settings: settings) {
                found.append(finding)
            }
            return found
        }
        return perDevice + (settings.authFailureSpike ? AnomalyRules.authFailureSpikes(evidence.failedLogins, settings: settings) : [])
    }
}
