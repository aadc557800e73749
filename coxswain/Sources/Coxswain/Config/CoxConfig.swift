import Foundation
import PharosConfig

/// `cox.yaml`, with `COX_*` environment overrides (`fleet.vpn_subnet` → `COX_FLEET_VPN_SUBNET`).
/// Keys follow upstream's; `cox init --personal | --enterprise` writes a preset.
public struct CoxConfig: Sendable, Equatable {
    public enum Posture: String, Sendable, CaseIterable { case personal, enterprise }

    public var posture = Posture.personal
    /// `sqlite` (`<state_dir>/app.db`) or `postgres` (the database of `dsnFile`).
    public var backend = "sqlite"
    /// The file holding the PostgreSQL DSN, password included (0600); empty means
    /// `<state_dir>/postgres.dsn`. Never argv or the environment.
    public var dsnFile = ""
    public var stateDir = "./state"
    public var logLevel = "info"
    /// The admin API and UI; empty turns them off.
    public var uiListen = "127.0.0.1:8443"
    /// Mark the session cookie Secure: set when the UI is reached over TLS (a reverse proxy
    /// or an SSH tunnel to an HTTPS front end); plain http://127.0.0.1 needs it off.
    public var uiSecureCookies = false
    public var amneziaWG = true
    public var xray = false
    public var relayEmbedded = true
    public var relayRemote = false
    public var relayClientListen = ":443"
    public var relayPublicEndpoint = ""
    /// The embedded relay's client port: connections in total and from one address.
    public var relayMaxConnections = 10_000
    public var relayMaxConnectionsPerAddress = 256
    public var accountsSync = true
    public var auditRetentionDays = 30
    public var metricsRetentionDays = 7
    public var decoySite = "www.microsoft.com"
    public var vpnSubnet = "10.86.0.0/16"
    public var endpointPortMin = 2000
    public var endpointPortMax = 60000
    public var rotationEnabled = false
    public var rotationIntervalSeconds = 600
    public var rotationJitterSeconds = 120
    public var idleNodes = 0
    /// Seconds between reconcile sweeps.
    public var reconcileInterval = 45
    /// Consecutive failed polls after which a node is marked unreachable.
    public var unreachableAfterPolls = 3
    /// Per-call deadline of a push or status call to a node.
    public var nodeCallTimeoutSeconds = 10
    public var analyticsDisabled = false
    public var analyticsIntervalSeconds = 60
    public var analyticsWindowHours = 24
    /// A MaxMind DB (GeoLite2-City or DB-IP City Lite) for the GeoIP rules and `cox geoip`;
    /// relative to the config file's directory; empty = no GeoIP.
    public var geoipDB = ""
    /// The SIEM stream (`pharos.monitor.v1.MonitorStream`, TLS 1.3): off while empty.
    public var siemListen = ""
    /// Comma-separated names (DNS or IP) its certificate is issued for, besides the listen host.
    public var siemServerNames = ""
    /// The anomaly rules (`analytics.<rule>.*`).
    public var anomaly = AnomalySettings()

    public init() {}

    public static func preset(_ posture: Posture) -> CoxConfig {
        var config = CoxConfig()
        config.posture = posture
        if posture == .enterprise {
            config.xray = true
            config.relayRemote = true
            config.idleNodes = 1
            config.auditRetentionDays = 365
            config.metricsRetentionDays = 90
            config.rotationEnabled = true
        }
        return config
    }

    mutating func setBackend(_ value: String) throws(ConfigValueError) {
        guard value == "sqlite" || value == "postgres" else { throw ConfigValueError(expected: "sqlite or postgres") }
        backend = value
    }

    /// The PostgreSQL DSN file: `store.dsn_file` resolved against `base` when relative, or
    /// `postgres.dsn` in the state directory.
    public func dsnFilePath(relativeTo base: String) -> String {
        if dsnFile.isEmpty {
            return URL(fileURLWithPath: databasePath(relativeTo: base)).deletingLastPathComponent().appendingPathComponent("postgres.dsn").path
        }
        return dsnFile.hasPrefix("/") ? dsnFile : URL(fileURLWithPath: base).appendingPathComponent(dsnFile).standardizedFileURL.path
    }

    /// The SQLite file inside the state directory, resolved against `base` when relative.
    public func databasePath(relativeTo base: String) -> String {
        let dir = stateDir.hasPrefix("/") ? stateDir : URL(fileURLWithPath: base).appendingPathComponent(stateDir).path
        return URL(fileURLWithPath: dir).appendingPathComponent("app.db").standardizedFileURL.path
    }
}
