import CMaxMindDB
import Foundation

/// Where an address is, as a City database says (`geoip_db`).
public struct GeoLocation: Sendable, Equatable {
    /// ISO 3166-1 alpha-2, "" when the database has none.
    public var country: String
    public var city: String
    public var latitude: Double?
    public var longitude: Double?

    public init(country: String, city: String = "", latitude: Double? = nil, longitude: Double? = nil) {
        self.country = country
        self.city = city
        self.latitude = latitude
        self.longitude = longitude
    }

    /// "Berlin, DE", "DE", or "?".
    public var place: String { city.isEmpty && country.isEmpty ? "?" : [city, country].filter { !$0.isEmpty }.joined(separator: ", ") }

    /// Great-circle distance in km (haversine, mean Earth radius); nil without coordinates.
    public func kilometres(to other: GeoLocation) -> Double? {
        guard let lat1 = latitude, let lon1 = longitude, let lat2 = other.latitude, let lon2 = other.longitude else { return nil }
        let radians = Double.pi / 180
        let dLat = (lat2 - lat1) * radians, dLon = (lon2 - lon1) * radians
        let a = sin(dLat / 2) * sin(dLat / 2) + cos(lat1 * radians) * cos(lat2 * radians) * sin(dLon / 2) * sin(dLon / 2)
        return 2 * 6371.0 * atan2(a.squareRoot(), (1 - a).squareRoot())
    }
}

public enum GeoIPError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    case badAddress(String)
    case lookupFailed(address: String, reason: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            "geoip_db: cannot open \(path) as a MaxMind DB (GeoLite2-City or DB-IP City Lite .mmdb): \(reason)"
        case .badAddress(let address): "\"\(address)\" is not an IP address"
        case .lookupFailed(let address, let reason): "GeoIP lookup of \(address) failed: \(reason)"
        }
    }
}

/// A MaxMind DB (MaxMind GeoLite2-City or DB-IP City Lite) through libmaxminddb, opened
/// memory-mapped and read-only. libmaxminddb's lookups on an open database are thread-safe
/// and nothing here changes after `init`, hence `@unchecked Sendable`.
public final class GeoIPDatabase: @unchecked Sendable {
    public let path: String
    private let mmdb: UnsafeMutablePointer<MMDB_s>

    public struct Metadata: Sendable, Equatable {
        public var databaseType: String
        /// When it was built (seconds since 1970).
        public var buildEpoch: UInt64
        public var ipVersion: Int
        public var nodeCount: Int
        public var description: String
    }

    /// With `privateCopy`, the file is copied first and the copy opened and unlinked: the
    /// mapping then cannot be changed under a long-lived reader by someone rewriting `path` in
    /// place (a truncated mapping is a SIGBUS at the next lookup, not an error).
    public init(path: String, privateCopy: Bool = false) throws(GeoIPError) {
        var opened = path
        if privateCopy {
            opened = NSTemporaryDirectory() + "pharos-geoip-\(UUID().uuidString).mmdb"
            do { try FileManager.default.copyItem(atPath: path, toPath: opened) } catch {
                throw .cannotOpen(path: path, reason: "cannot copy it: \(error.localizedDescription)")
            }
        }
        defer { if privateCopy { unlink(opened) } }
        // Opened before any stored property is set: a throw here runs no deinit.
        let handle = UnsafeMutablePointer<MMDB_s>.allocate(capacity: 1)
        let status = MMDB_open(opened, UInt32(MMDB_MODE_MMAP), handle)
        guard status == MMDB_SUCCESS else {
            handle.deallocate()
            throw .cannotOpen(path: path, reason: String(cString: MMDB_strerror(status)))
        }
        self.path = path
        mmdb = handle
    }

    deinit {
        MMDB_close(mmdb)
        mmdb.deallocate()
    }

    public var metadata: Metadata {
        let meta = mmdb.pointee.metadata
        var description = ""
        if meta.description.count > 0, let first = meta.description.descriptions?[0]?.pointee, let text = first.description {
            description = String(cString: text)
        }
        return Metadata(databaseType: meta.database_type.map { String(cString: $0) } ?? "", buildEpoch: meta.build_epoch,
                        ipVersion: Int(meta.ip_version), nodeCount: Int(meta.node_count), description: description)
    }

    /// Where `address` is; nil when the database has no entry for it.
    public func lookup(_ address: String) throws(GeoIPError) -> GeoLocation? {
        var gaiError: Int32 = 0, mmdbError: Int32 = 0
        var result = MMDB_lookup_string(mmdb, address, &gaiError, &mmdbError)
        guard gaiError == 0 else { throw .badAddress(address) }
        guard mmdbError == MMDB_SUCCESS else {
            throw .lookupFailed(address: address, reason: String(cString: MMDB_strerror(mmdbError)))
        }
        guard result.found_entry else { return nil }
        return GeoLocation(country: Self.value(&result.entry, ["country", "iso_code"])?.text ?? "",
                           city: Self.value(&result.entry, ["city", "names", "en"])?.text ?? "",
                           latitude: Self.value(&result.entry, ["location", "latitude"])?.number,
                           longitude: Self.value(&result.entry, ["location", "longitude"])?.number)
    }

    private enum Value {
        case text(String), number(Double)
        var text: String? { if case .text(let t) = self { t } else { nil } }
        var number: Double? { if case .number(let n) = self { n } else { nil } }
    }

    private static func value(_ entry: inout MMDB_entry_s, _ path: [String]) -> Value? {
        var data = MMDB_entry_data_s()
        let strings = path.map { strdup($0) }
        defer { strings.forEach { free($0) } }
        let status = (strings + [nil]).map { UnsafePointer($0) }.withUnsafeBufferPointer { keys in
            MMDB_aget_value(&entry, &data, keys.baseAddress)
        }
        guard status == MMDB_SUCCESS, data.has_data else { return nil }
        switch Int32(data.type) {
        case MMDB_DATA_TYPE_UTF8_STRING:
            guard let bytes = data.utf8_string else { return nil }
            return .text(bytes.withMemoryRebound(to: UInt8.self, capacity: Int(data.data_size)) {
                String(decoding: UnsafeBufferPointer(start: $0, count: Int(data.data_size)), as: UTF8.self)
            })
        case MMDB_DATA_TYPE_DOUBLE: return .number(data.double_value)
        case MMDB_DATA_TYPE_FLOAT: return .number(Double(data.float_value))
        default: return nil
        }
    }
}

/// `geoip_db` for `cox serve`: opened at start, and opened again when the file changes (a
/// `cox geoip update`, a cron job replacing it), so a new database needs no restart. Each is
/// a private copy, so rewriting the file in place cannot pull the mapping from under a
/// sweep. A file that stops opening keeps the last good one in use.
public actor GeoIPSource {
    public let path: String
    private var database: GeoIPDatabase?
    private var modified: Date?

    public init(path: String) throws(GeoIPError) {
        self.path = path
        modified = Self.modificationDate(path)
        database = try GeoIPDatabase(path: path, privateCopy: true)
    }

    public func current() -> GeoIPDatabase? {
        let now = Self.modificationDate(path)
        if now != modified, let reopened = try? GeoIPDatabase(path: path, privateCopy: true) {
            database = reopened
            modified = now
        }
        return database
    }

    static func modificationDate(_ path: String) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
    }
}
