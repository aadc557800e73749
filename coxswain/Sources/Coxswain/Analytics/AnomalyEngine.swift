import Foundation
import PharosSpec

/// `cox serve`'s anomaly sweep (upstream's engine, reference §7): every
/// `analytics.interval_seconds` it reads the last `analytics.window_hours` of connection
/// events of known devices and runs the enabled rules per device. A finding opens its alert
/// or refreshes the open one; security findings never resolve themselves (an operator
/// resolves them, `cox alerts resolve`), and a resolved alert is not reopened by the evidence
/// it was resolved on, only by newer events.
public enum AnomalyEngine {
    /// The alerts it opened.
    @discardableResult
    public static func sweep(_ store: Store, settings: AnomalySettings, window: Int64,
                             now: Int64 = StoreClock.now()) async throws -> [AlertRecord] {
        let events = try await store.read { tx in try tx.deviceConnectionEvents(since: now - window) }
        let findings = Self.findings(events, settings: settings)
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

    /// Every enabled rule over each device's events (`events` oldest first, any devices).
    public static func findings(_ events: [ConnectionEventRecord], settings: AnomalySettings) -> [AnomalyFinding] {
        let byDevice = Dictionary(grouping: events.filter { $0.deviceID != nil }, by: { $0.deviceID ?? "" })
        return byDevice.keys.sorted().flatMap { device -> [AnomalyFinding] in
            let history = byDevice[device] ?? []
            return [settings.leakedProfile ? AnomalyRules.leakedProfile(history, settings: settings) : nil,
                    settings.concurrentSessions ? AnomalyRules.concurrentSessions(history, settings: settings) : nil].compactMap { $0 }
        }
    }
}
