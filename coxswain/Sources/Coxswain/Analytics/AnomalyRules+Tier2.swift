import Foundation

/// Upstream's Tier 2 rules (reference §7) apart from `fleet_health`, which the reconciler
/// raises and resolves itself. Pure functions of one device's events (oldest first) and the
/// history `AnomalyEvidence` read for them.
extension AnomalyRules {
    /// `revoked_profile_active` (critical): a node still let a removed device's key in after
    /// the removal had `revokedProfileGraceSeconds` to reach it: the node did not apply the
    /// removal (drift, a restored backup, or a node not under our control any more).
    public static func revokedProfileActive(_ events: [ConnectionEventRecord], removedAt: Int64,
                                            settings: AnomalySettings) -> AnomalyFinding? {
        let grace = Int64(settings.revokedProfileGraceSeconds) * AnomalySettings.second
        let late = events.filter { $0.eventType != "disconnect" && $0.at > removedAt + grace }
        guard let last = late.last, let deviceID = last.deviceID else { return nil }
        return AnomalyFinding(kind: "revoked_profile_active", severity: .critical, deviceID: deviceID, userID: last.userID,
                              nodeID: last.nodeID, sourceIPs: Self.distinct(late.map(\.sourceIP).filter { !$0.isEmpty }),
                              lastSeen: last.at, detail: [
                                "removed_at": LiveEvent.timestamp(removedAt),
                                "nodes": Self.distinct(late.map(\.nodeID)).joined(separator: ","),
                                "peers": Self.distinct(late.map(\.peerID)).joined(separator: ","),
                              ])
    }

    /// `auth_failure_spike` (warning): `authFailureThreshold` failed admin logins or more from
    /// one address within `authFailureWindowMinutes`; one alert per address.
    public static func authFailureSpikes(_ logins: [AnomalyEvidence.FailedLogin], settings: AnomalySettings) -> [AnomalyFinding] {
        let window = Int64(settings.authFailureWindowMinutes) * 60 * AnomalySettings.second
        let byAddress = Dictionary(grouping: logins.filter { !$0.sourceIP.isEmpty }, by: \.sourceIP)
        return byAddress.keys.sorted().compactMap { address -> AnomalyFinding? in
            let attempts = byAddress[address] ?? []
            var start = 0
            var best: ArraySlice<AnomalyEvidence.FailedLogin> = []
            for end in attempts.indices {
                while attempts[end].at - attempts[start].at > window { start += 1 }
                if end - start + 1 > best.count { best = attempts[start...end] }
            }
            guard best.count >= settings.authFailureThreshold, let first = best.first, let last = best.last else { return nil }
            return AnomalyFinding(kind: "auth_failure_spike", severity: .warning, deviceID: nil, userID: nil, nodeID: nil,
                                  sourceIPs: [address], lastSeen: last.at, detail: [
                                    "failures": "\(best.count)", "within_seconds": "\((last.at - first.at) / AnomalySettings.second)",
                                    "accounts": "\(Set(best.map(\.account)).count)",
                                  ], dedupKey: "auth_failure_spike:\(address)")
        }
    }

    /// `dormant_then_active` (info): the device connected after more than `dormantDays`
    /// without any activity.
    public static func dormantThenActive(_ events: [ConnectionEventRecord], settings: AnomalySettings) -> AnomalyFinding? {
        let gap = Int64(settings.dormantDays) * 86_400 * AnomalySettings.second
        guard let wake = events.last(where: { event in
                  event.eventType == "connect" && event.previousSeenAt.map { event.at - $0 > gap } == true
              }), let deviceID = wake.deviceID, let previous = wake.previousSeenAt else { return nil }
        return AnomalyFinding(kind: "dormant_then_active", severity: .info, deviceID: deviceID, userID: wake.userID, nodeID: wake.nodeID,
                              sourceIPs: wake.sourceIP.isEmpty ? [] : [wake.sourceIP], lastSeen: wake.at, detail: [
                                "idle_days": "\((wake.at - previous) / (86_400 * AnomalySettings.second))",
                                "last_seen_before": LiveEvent.timestamp(previous),
                              ])
    }

    /// `off_hours_access` (info): a connect in a UTC hour that held at most
    /// `offHoursMaxSharePercent` of the device's earlier connects, once there were at least
    /// `offHoursMinConnects` of them over at least `offHoursMinDays`; one alert per device and
    /// day. `before` counts the connects before `events`.
    public static func offHoursAccess(_ events: [ConnectionEventRecord], before: AnomalyEvidence.HourCounts,
                                      settings: AnomalySettings) -> [AnomalyFinding] {
        var history = before
        var byDay: [Int64: AnomalyFinding] = [:]
        let day = 86_400 * AnomalySettings.second
        for event in events where event.eventType == "connect" {
            defer { history.add(event.at) }
            let hour = AnomalyEvidence.HourCounts.hour(event.at), total = history.total
            guard total >= settings.offHoursMinConnects, let first = history.first,
                  event.at - first >= Int64(settings.offHoursMinDays) * day,
                  history.counts[hour] * 100 <= settings.offHoursMaxSharePercent * total,
                  let deviceID = event.deviceID else { continue }
            let date = String(LiveEvent.timestamp(event.at).prefix(10))
            byDay[event.at / day] = AnomalyFinding(
                kind: "off_hours_access", severity: .info, deviceID: deviceID, userID: event.userID, nodeID: event.nodeID,
                sourceIPs: event.sourceIP.isEmpty ? [] : [event.sourceIP], lastSeen: event.at,
                detail: ["hour_utc": "\(hour)", "earlier_connects": "\(total)", "in_that_hour": "\(history.counts[hour])", "day": date],
                dedupKey: "off_hours_access:\(deviceID):\(date)")
        }
        return byDay.keys.sorted().compactMap { byDay[$0] }
    }

    /// `data_volume` (warning, experimental as upstream's): a session that uploaded more than
    /// `dataVolumeMinMiB` and more than `dataVolumeFactor` times the median of the device's
    /// sessions before it, given at least `dataVolumeMinSessions` of them. `uploads` is every
    /// session of the device on record.
    public static func dataVolume(_ events: [ConnectionEventRecord], uploads: [AnomalyEvidence.SessionUpload],
                                  settings: AnomalySettings) -> AnomalyFinding? {
        let minBytes = Int64(settings.dataVolumeMinMiB) << 20
        for session in events.reversed() where session.eventType == "disconnect" && session.rxBytes > minBytes {
            let earlier = uploads.filter { $0.at < session.at }.map(\.bytes).sorted()
            guard earlier.count >= settings.dataVolumeMinSessions, let deviceID = session.deviceID else { continue }
            let median = earlier.count % 2 == 1 ? earlier[earlier.count / 2]
                : (earlier[earlier.count / 2 - 1] + earlier[earlier.count / 2]) / 2
            guard session.rxBytes / Int64(settings.dataVolumeFactor) > median else { continue }
            return AnomalyFinding(kind: "data_volume", severity: .warning, deviceID: deviceID, userID: session.userID,
                                  nodeID: session.nodeID, sourceIPs: session.sourceIP.isEmpty ? [] : [session.sourceIP],
                                  lastSeen: session.at, detail: [
                                    "upload_bytes": "\(session.rxBytes)", "median_bytes": "\(median)",
                                    "sessions_before": "\(earlier.count)",
                                  ])
        }
        return nil
    }
}
