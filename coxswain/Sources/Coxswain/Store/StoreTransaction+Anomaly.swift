import Foundation

/// The reads and writes of the anomaly sweep (`AnomalyEvidence`, `AnomalyEngine`).
extension StoreTransaction {
    /// Failed admin logins at or after `since`, oldest first.
    func failedLogins(since: Int64) throws -> [AnomalyEvidence.FailedLogin] {
        try sql.rows("""
            SELECT at, source_ip, actor FROM audit_log WHERE action = 'auth.login' AND result = 'error' AND at >= ? ORDER BY at, id
            """, [since]).map { AnomalyEvidence.FailedLogin(at: $0["at"], sourceIP: $0["source_ip"], account: $0["actor"]) }
    }

    /// The connects of `devices` before `before`, grouped by device and UTC hour: the earliest
    /// of each group and how many it holds. One grouped read for every device.
    func connectHours(devices: Set<String>, before: Int64) throws -> [(deviceID: String, first: Int64, count: Int)] {
        guard !devices.isEmpty else { return [] }
        let ids: [(any SQLBindable)?] = devices.sorted().map { $0 }
        let marks = Array(repeating: "?", count: ids.count).joined(separator: ", ")
        return try sql.rows("""
            SELECT device_id, MIN(at) AS first, COUNT(*) AS n FROM connection_events
            WHERE event_type = 'connect' AND device_id IN (\(marks)) AND at < ?
            GROUP BY device_id, (at / 3600000000) % 24
            """, ids + [before]).map { (deviceID: $0["device_id"] as String, first: $0["first"] as Int64, count: $0["n"] as Int) }
    }

    /// The countries `devices` were seen in before (`new_geo`'s baseline), as (device, country).
    func knownCountries(devices: Set<String>) throws -> [(deviceID: String, country: String)] {
        guard !devices.isEmpty else { return [] }
        let ids: [(any SQLBindable)?] = devices.sorted().map { $0 }
        let marks = Array(repeating: "?", count: ids.count).joined(separator: ", ")
        return try sql.rows("SELECT device_id, country FROM device_countries WHERE device_id IN (\(marks))", ids)
            .map { (deviceID: $0["device_id"] as String, country: $0["country"] as String) }
    }

    /// Every session's upload on record for `device`, oldest first (not the synthetic
    /// `stream-lost` ends: their bytes are unknown, not zero).
    func sessionUploads(device: String) throws -> [AnomalyEvidence.SessionUpload] {
        try sql.rows("""
            SELECT at, rx_bytes FROM connection_events
            WHERE device_id = ? AND event_type = 'disconnect' AND reason != 'stream-lost' ORDER BY at, id
            """, [device]).map { AnomalyEvidence.SessionUpload(at: $0["at"], bytes: $0["rx_bytes"]) }
    }

    /// Remembers the countries devices were seen in (`new_geo`'s baseline); removed devices'
    /// are not kept.
    public func recordDeviceCountries(_ seen: [(deviceID: String, country: String, at: Int64)]) throws {
        for entry in seen {
            try sql.execute("""
                INSERT INTO device_countries (device_id, country, first_seen_at)
                SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM devices WHERE id = ?)
                ON CONFLICT (device_id, country) DO NOTHING
                """, [entry.deviceID, entry.country, entry.at, entry.deviceID])
        }
    }
}
