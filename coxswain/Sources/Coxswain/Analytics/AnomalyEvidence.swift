import Foundation

/// What one anomaly sweep reads from the store, in one read transaction: the window's device
/// events, and for the Tier 2 rules the history they compare against, read only for the
/// devices the window makes candidates.
public struct AnomalyEvidence: Sendable {
    /// Events of known devices in the window, oldest first.
    public var events: [ConnectionEventRecord]
    /// When each removed device among them was removed (µs).
    public var removedAt: [String: Int64] = [:]
    /// Failed admin logins in the window, oldest first.
    public var failedLogins: [FailedLogin] = []
    /// Connects before the window by UTC hour, for each device that connects in it.
    public var connectHours: [String: HourCounts] = [:]
    /// Every session's upload on record, oldest first, for each device with a session in the
    /// window above `dataVolumeMinMiB` (not the synthetic `stream-lost` ends: their bytes are
    /// unknown, not zero).
    public var sessionUploads: [String: [SessionUpload]] = [:]
    /// Where each source address of the window is (GeoIP), for those the database knows.
    public var locations: [String: GeoLocation] = [:]
    /// The countries each device of the window was seen in before (`new_geo`).
    public var knownCountries: [String: Set<String>] = [:]

    public init(events: [ConnectionEventRecord]) {
        self.events = events
    }

    public struct FailedLogin: Sendable, Equatable {
        public var at: Int64
        public var sourceIP: String
        /// The e-mail address tried.
        public var account: String

        public init(at: Int64, sourceIP: String, account: String) {
            self.at = at
            self.sourceIP = sourceIP
            self.account = account
        }
    }

    public struct SessionUpload: Sendable, Equatable {
        /// When the session ended (µs).
        public var at: Int64
        public var bytes: Int64

        public init(at: Int64, bytes: Int64) {
            self.at = at
            self.bytes = bytes
        }
    }

    /// How many connects fell in each UTC hour, and since when.
    public struct HourCounts: Sendable, Equatable {
        public var counts = [Int](repeating: 0, count: 24)
        public var first: Int64?

        public init() {}

        public var total: Int { counts.reduce(0, +) }

        static func hour(_ at: Int64) -> Int { Int((at / 3_600_000_000) % 24) }

        public mutating func add(_ at: Int64, count: Int = 1) {
            counts[Self.hour(at)] += count
            first = min(first ?? at, at)
        }
    }
}

extension StoreTransaction {
    /// The evidence of the sweep over `since`…now, for the rules `settings` enables.
    public func anomalyEvidence(since: Int64, settings: AnomalySettings) throws -> AnomalyEvidence {
        var evidence = AnomalyEvidence(events: try deviceConnectionEvents(since: since))
        if settings.revokedProfileActive {
            evidence.removedAt = try removedDevices(Set(evidence.events.compactMap(\.deviceID)))
        }
        if settings.authFailureSpike {
            evidence.failedLogins = try failedLogins(since: since)
        }
        if settings.offHoursAccess {
            let connecting = Set(evidence.events.filter { $0.eventType == "connect" }.compactMap(\.deviceID))
            // One grouped read for every device that connects in the window.
            for device in connecting { evidence.connectHours[device] = AnomalyEvidence.HourCounts() }
            for group in try connectHours(devices: connecting, before: since) {
                evidence.connectHours[group.deviceID]?.add(group.first, count: group.count)
            }
        }
        if settings.newGeo {
            let devices = Set(evidence.events.compactMap(\.deviceID))
            for known in try knownCountries(devices: devices) {
                evidence.knownCountries[known.deviceID, default: []].insert(known.country)
            }
        }
        if settings.dataVolume {
            let minBytes = Int64(settings.dataVolumeMinMiB) << 20
            let heavy = Set(evidence.events.filter { $0.eventType == "disconnect" && $0.rxBytes > minBytes }.compactMap(\.deviceID))
            for device in heavy.sorted() {
                evidence.sessionUploads[device] = try sessionUploads(device: device)
            }
        }
        return evidence
    }
}
