import Foundation

/// What one rule found in one device's connection history: `AnomalyEngine` turns it into an
/// alert, one open per `dedupKey` and refreshed in place while the finding lasts.
public struct AnomalyFinding: Sendable, Equatable {
    public var kind: String
    public var severity: AlertSeverity
    public var deviceID: String
    public var userID: String?
    public var nodeID: String?
    public var sourceIPs: [String]
    /// The newest event of the evidence (µs): a finding no newer than the alert an operator
    /// resolved is that alert again, not a new one.
    public var lastSeen: Int64
    public var detail: [String: String]

    /// One open alert per rule and device (upstream's dedup key).
    public var dedupKey: String { "\(kind):\(deviceID)" }
}

/// The rules' settings (`analytics.*` in cox.yaml).
public struct AnomalySettings: Sendable, Equatable {
    /// Tier 1 `leaked_profile`: one device key seen from at least `leakedProfileMinIPs`
    /// distinct source addresses within `leakedProfileWindow` (µs).
    public var leakedProfile = true
    public var leakedProfileWindow: Int64 = 10 * 60_000_000
    public var leakedProfileMinIPs = 2
    /// Tier 1 `concurrent_sessions`: one device's sessions open on two nodes at once.
    public var concurrentSessions = true
    /// Clocks of different nodes disagree this much (µs) before an overlap counts.
    public var clockSkew: Int64 = 60_000_000
    /// A connect with no disconnect is taken as closed this long after it (µs).
    public var sessionAssumedClosedAfter: Int64 = 30 * 60_000_000

    public init() {}

    /// The rules these settings run, by name (`GET /api/analytics/status`).
    public var enabledRules: [String] {
        (leakedProfile ? ["leaked_profile"] : []) + (concurrentSessions ? ["concurrent_sessions"] : [])
    }
}

/// Upstream's Tier 1 rules that need no GeoIP, as pure functions of one device's connection
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
