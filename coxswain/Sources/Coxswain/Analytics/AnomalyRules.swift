import Foundation

/// What one rule found: `AnomalyEngine` turns it into an alert, one open per `dedupKey` and
/// refreshed in place while the finding lasts.
public struct AnomalyFinding: Sendable, Equatable {
    public var kind: String
    public var severity: AlertSeverity
    /// nil for a finding about an address, not a device (`auth_failure_spike`).
    public var deviceID: String?
    public var userID: String?
    public var nodeID: String?
    public var sourceIPs: [String]
    /// The newest event of the evidence (µs): a finding no newer than the alert an operator
    /// resolved is that alert again, not a new one.
    public var lastSeen: Int64
    public var detail: [String: String]
    /// One open alert per key: per rule and device (upstream's), per address, or per device
    /// and day (`off_hours_access`).
    public var dedupKey: String

    public init(kind: String, severity: AlertSeverity, deviceID: String?, userID: String?, nodeID: String?, sourceIPs: [String],
                lastSeen: Int64, detail: [String: String], dedupKey: String? = nil) {
        self.kind = kind
        self.severity = severity
        self.deviceID = deviceID
        self.userID = userID
        self.nodeID = nodeID
        self.sourceIPs = sourceIPs
        self.lastSeen = lastSeen
        self.detail = detail
        self.dedupKey = dedupKey ?? "\(kind):\(deviceID ?? "")"
    }
}

/// The rules' settings, in cox.yaml's units (`analytics.*`).
public struct AnomalySettings: Sendable, Equatable {
    /// Tier 1 `leaked_profile`: one device key seen from at least `leakedProfileMinIPs`
    /// distinct source addresses within `leakedProfileWindowMinutes`.
    public var leakedProfile = true
    public var leakedProfileWindowMinutes = 10
    public var leakedProfileMinIPs = 2
    /// Tier 1 `concurrent_sessions`: one device's sessions open on two nodes at once.
    public var concurrentSessions = true
    /// Tier 1 `impossible_travel` (GeoIP): two consecutive addresses of one device more than
    /// `impossibleTravelMinKm` apart, reached faster than `impossibleTravelMaxKmh`.
    public var impossibleTravel = true
    public var impossibleTravelMaxKmh = 900
    public var impossibleTravelMinKm = 100
    /// Tier 1 `new_geo` (GeoIP): a device connecting from a country it was never seen in.
    public var newGeo = true
    /// Tier 2 `revoked_profile_active`: a removed device's key still let in by a node this
    /// long after the removal (the push has had its time).
    public var revokedProfileActive = true
    public var revokedProfileGraceSeconds = 120
    /// Tier 2 `auth_failure_spike`: this many failed admin logins from one address within
    /// the window.
    public var authFailureSpike = true
    public var authFailureThreshold = 5
    public var authFailureWindowMinutes = 10
    /// Tier 2 `dormant_then_active`: a device active again after this many idle days.
    public var dormantThenActive = true
    public var dormantDays = 30
    /// Tier 2 `off_hours_access`: a connect in a UTC hour that holds at most this share of
    /// the device's earlier connects, once it has at least `offHoursMinConnects` of them over
    /// at least `offHoursMinDays`.
    public var offHoursAccess = true
    public var offHoursMaxSharePercent = 2
    public var offHoursMinConnects = 20
    public var offHoursMinDays = 7
    /// Tier 2 `data_volume` (experimental, as upstream's): a session that uploaded more than
    /// `dataVolumeMinMiB` and more than `dataVolumeFactor` times the device's median session,
    /// with at least `dataVolumeMinSessions` sessions before it.
    public var dataVolume = true
    public var dataVolumeMinMiB = 1024
    public var dataVolumeFactor = 10
    public var dataVolumeMinSessions = 20

    public init() {}

    static let second: Int64 = 1_000_000
    /// Clocks of different nodes disagree this much (µs) before an overlap counts.
    var clockSkew: Int64 { 60 * Self.second }
    /// A connect with no disconnect is taken as closed this long after it (µs).
    var sessionAssumedClosedAfter: Int64 { 30 * 60 * Self.second }
    var leakedProfileWindow: Int64 { Int64(leakedProfileWindowMinutes) * 60 * Self.second }

    /// The rules these settings run, by name (`GET /api/analytics/status`); the GeoIP ones
    /// only with a database.
    public func enabledRules(geoIP: Bool) -> [String] {
        [(leakedProfile, "leaked_profile"), (concurrentSessions, "concurrent_sessions"),
         (impossibleTravel && geoIP, "impossible_travel"), (newGeo && geoIP, "new_geo"),
         (revokedProfileActive, "revoked_profile_active"), (authFailureSpike, "auth_failure_spike"),
         (dormantThenActive, "dormant_then_active"), (offHoursAccess, "off_hours_access"),
         (dataVolume, "data_volume")].filter(\.0).map(\.1)
    }
}

/// Upstream's rules that need no GeoIP, as pure functions of one device's connection
/// events (oldest first). Each returns at most one finding: the alert is per device.
public enum AnomalyRules {
    /// `leaked_profile` (critical): the device's key connected from `minIPs` or more distinct
    /// source addresses within `window`: a profile copied to another machine. Roaming on one
    /// network does not count (one address), nor does a move well apart in time.
    public static func leakedProfile(_ events: [ConnectionEventRecord], settings: AnomalySettings) -> AnomalyFinding? {
        let connects = events.filter { $0.eventType != "disconnect" && !$0.sourceIP.isEmpty }
        var start = 0
        var best: ArraySlice<ConnectionEventRecord> = []
        for end in connects.indices {
            while connects[end].at - connects[start].at > settings.leakedProfileWindow { start += 1 }
            let window = connects[start...end]
            if Set(window.map(\.sourceIP)).count > Set(best.map(\.sourceIP)).count { best = window }
        }
        let addresses = Self.distinct(best.map(\.sourceIP))
        guard addresses.count >= settings.leakedProfileMinIPs, let first = best.first, let last = best.last,
              let deviceID = first.deviceID else { return nil }
        return AnomalyFinding(kind: "leaked_profile", severity: .critical, deviceID: deviceID, userID: first.userID, nodeID: last.nodeID,
                              sourceIPs: addresses, lastSeen: last.at, detail: [
                                "addresses": addresses.joined(separator: ","),
                                "within_seconds": "\((last.at - first.at) / 1_000_000)",
                                "nodes": Self.distinct(best.map(\.nodeID)).joined(separator: ","),
                              ])
    }

    /// One session of a device on a node: from a connect to its disconnect (or to when it is
    /// assumed closed).
    struct Session: Equatable {
        var nodeID: String
        var sourceIP: String
        var start: Int64
        var end: Int64
    }

    /// The device's sessions, per node and peer: a connect or handshake opens one or keeps
    /// the open one alive, a disconnect closes it. One with no sign of life for
    /// `sessionAssumedClosedAfter` ends that long after its last.
    static func sessions(_ events: [ConnectionEventRecord], settings: AnomalySettings) -> [Session] {
        var open: [String: Session] = [:], closed: [Session] = []
        for event in events {
            let key = "\(event.nodeID)/\(event.peerID)"
            switch event.eventType {
            case "connect", "handshake":
                if var session = open[key], event.at - session.end <= settings.sessionAssumedClosedAfter {
                    session.end = event.at
                    open[key] = session
                } else {
                    // A handshake with no session open is a sign of life too (its connect fell
                    // before the window, or the event stream was lost in between).
                    if var stale = open[key] {
                        stale.end += settings.sessionAssumedClosedAfter
                        closed.append(stale)
                    }
                    open[key] = Session(nodeID: event.nodeID, sourceIP: event.sourceIP, start: event.at, end: event.at)
                }
            case "disconnect":
                if var session = open.removeValue(forKey: key) {
                    session.end = event.at
                    closed.append(session)
                }
            default:
                continue
            }
        }
        // Still open: alive until assumed closed (the sweep's own clock does not matter here).
        closed += open.values.map { var s = $0; s.end += settings.sessionAssumedClosedAfter; return s }
        return closed.sorted { ($0.start, $0.nodeID) < ($1.start, $1.nodeID) }
    }

    /// `concurrent_sessions` (warning): sessions of the device open on two different nodes at
    /// once, for longer than clock skew between nodes could explain.
    public static func concurrentSessions(_ events: [ConnectionEventRecord], settings: AnomalySettings) -> AnomalyFinding? {
        let sessions = Self.sessions(events, settings: settings)
        for (index, a) in sessions.enumerated() {
            for b in sessions[(index + 1)...] where b.start < a.end && b.nodeID != a.nodeID {
                let overlap = min(a.end, b.end) - b.start
                guard overlap > settings.clockSkew, let device = events.first?.deviceID else { continue }
                return AnomalyFinding(kind: "concurrent_sessions", severity: .warning, deviceID: device, userID: events.first?.userID,
                                      nodeID: b.nodeID, sourceIPs: Self.distinct([a.sourceIP, b.sourceIP].filter { !$0.isEmpty }),
                                      lastSeen: min(a.end, b.end), detail: ["nodes": "\(a.nodeID),\(b.nodeID)", "overlap_seconds": "\(overlap / 1_000_000)"])
            }
        }
        return nil
    }

    /// In first-seen order, without repeats.
    static func distinct(_ values: [String]) -> [String] {
        var seen = Set<String>()
        return values.filter { seen.insert($0).inserted }
    }
}
