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
            guard Double(session.rxBytes) > Double(settings.dataVolumeFactor) * Double(median) else { continue }
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

/// Upstream's Tier 1 rules that need GeoIP (`geoip_db`).
extension AnomalyRules {
    /// `impossible_travel` (critical): two consecutive signs of life of the device from
    /// addresses more than `impossibleTravelMinKm` apart, closer in time (plus the clock skew
    /// nodes may have) than `impossibleTravelMaxKmh` allows. The latest such jump is reported.
    public static func impossibleTravel(_ events: [ConnectionEventRecord], locations: [String: GeoLocation],
                                        settings: AnomalySettings) -> AnomalyFinding? {
        let placed = events.filter { $0.eventType != "disconnect" }.compactMap { event in locations[event.sourceIP].map { (event, $0) } }
        var jump: (from: (ConnectionEventRecord, GeoLocation), to: (ConnectionEventRecord, GeoLocation), km: Double, kmh: Double)?
        for (from, to) in zip(placed, placed.dropFirst()) where from.0.sourceIP != to.0.sourceIP {
            guard let km = from.1.kilometres(to: to.1), km > Double(settings.impossibleTravelMinKm) else { continue }
            let hours = Double(to.0.at - from.0.at + settings.clockSkew) / 3_600_000_000
            let kmh = km / hours
            if kmh > Double(settings.impossibleTravelMaxKmh) { jump = (from, to, km, kmh) }
        }
        guard let jump, let deviceID = jump.to.0.deviceID else { return nil }
        return AnomalyFinding(kind: "impossible_travel", severity: .critical, deviceID: deviceID, userID: jump.to.0.userID,
                              nodeID: jump.to.0.nodeID, sourceIPs: [jump.from.0.sourceIP, jump.to.0.sourceIP], lastSeen: jump.to.0.at,
                              detail: [
                                "from": jump.from.1.place, "to": jump.to.1.place, "km": "\(Int(jump.km.rounded()))",
                                "kmh": "\(Int(jump.kmh.rounded()))", "seconds_apart": "\((jump.to.0.at - jump.from.0.at) / AnomalySettings.second)",
                              ])
    }

    /// `new_geo` (warning): the device connected from a country it was never seen in; one
    /// alert per device and country. A device's first country is its baseline, not news.
    public static func newGeo(_ events: [ConnectionEventRecord], locations: [String: GeoLocation],
                              known: Set<String>) -> [AnomalyFinding] {
        var seen = known
        var found: [AnomalyFinding] = []
        for event in events where event.eventType != "disconnect" {
            guard let location = locations[event.sourceIP], !location.country.isEmpty, let deviceID = event.deviceID else { continue }
            if seen.isEmpty { seen.insert(location.country) }
            guard seen.insert(location.country).inserted else { continue }
            found.append(AnomalyFinding(kind: "new_geo", severity: .warning, deviceID: deviceID, userID: event.userID, nodeID: event.nodeID,
                                        sourceIPs: [event.sourceIP], lastSeen: event.at,
                                        detail: ["country": location.country, "place": location.place,
                                                 "known": seen.subtracting([location.country]).sorted().joined(separator: ",")],
                                        dedupKey: "new_geo:\(deviceID):\(location.country)"))
        }
        return found
    }
}
