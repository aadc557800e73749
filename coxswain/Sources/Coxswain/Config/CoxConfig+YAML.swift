import Foundation
import PharosConfig
import PharosSpec

extension CoxConfig {
    /// Reads `path` (a missing file means the personal preset), then applies `COX_*` overrides.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError) -> CoxConfig {
        try checked(schema.load(path: path, defaults: CoxConfig(), environment: environment))
    }

    /// Settings that must agree with each other.
    static func checked(_ config: CoxConfig) throws(ConfigError) -> CoxConfig {
        guard config.endpointPortMin <= config.endpointPortMax else {
            throw .invalid(component: "cox", key: "fleet.endpoint_port_min", value: "\(config.endpointPortMin)",
                           expected: "at most fleet.endpoint_port_max (\(config.endpointPortMax))")
        }
        return config
    }

    /// The settings of `cox.yaml`, upstream's keys, each overridable by `COX_<SECTION>_<KEY>`.
    static let schema = ConfigSchema<CoxConfig>(component: "cox", environmentPrefix: "COX_", keys: [
        .oneOf("posture", \.posture),
        .init("backend") { c, v throws(ConfigValueError) in try c.setBackend(v) },
        .init("store.backend") { c, v throws(ConfigValueError) in try c.setBackend(v) },
        .text("store.dsn_file", \.dsnFile),
        .text("state_dir", \.stateDir),
        .text("geoip_db", \.geoipDB),
        .logLevel("log.level", \.logLevel),
        .listen("ui.listen", \.uiListen, allowEmpty: true,
                expected: "HOST:PORT such as 127.0.0.1:8443, or empty to turn the admin API off"),
        .bool("ui.secure_cookies", \.uiSecureCookies),
        .bool("protocols.amneziawg", \.amneziaWG), .bool("protocols.xray", \.xray),
        .bool("relay.embedded", \.relayEmbedded), .bool("relay.remote", \.relayRemote),
        .listen("relay.client_listen", \.relayClientListen, expected: "HOST:PORT or :PORT, such as :443"),
        .text("relay.public_endpoint", \.relayPublicEndpoint),
        .int("relay.max_connections", \.relayMaxConnections, 1...1_000_000),
        .int("relay.max_connections_per_address", \.relayMaxConnectionsPerAddress, 1...1_000_000),
        .bool("accounts.sync", \.accountsSync),
        .int("retention.audit_days", \.auditRetentionDays, 1...36500), .int("retention.metrics_days", \.metricsRetentionDays, 1...36500),
        .text("reality.decoy_site", \.decoySite),
        .init("fleet.vpn_subnet") { c, v throws(ConfigValueError) in
            guard let subnet = IPv4Subnet(v), subnet.prefixLength <= 30 else {
                throw ConfigValueError(expected: "an IPv4 CIDR of /30 or larger, e.g. 10.86.0.0/16")
            }
            c.vpnSubnet = subnet.description
        },
        .int("fleet.endpoint_port_min", \.endpointPortMin, 1...65535), .int("fleet.endpoint_port_max", \.endpointPortMax, 1...65535),
        .bool("fleet.rotation.enabled", \.rotationEnabled),
        .int("fleet.rotation.interval_seconds", \.rotationIntervalSeconds, 10...86400),
        .int("fleet.rotation.jitter_seconds", \.rotationJitterSeconds, 0...86400),
        .int("fleet.idle_nodes", \.idleNodes, 0...1000),
        .int("fleet.reconcile_interval", \.reconcileInterval, 1...3600),
        .int("fleet.unreachable_after_polls", \.unreachableAfterPolls, 1...100),
        .int("fleet.node_call_timeout_seconds", \.nodeCallTimeoutSeconds, 1...300),
        .listen("siem.listen", \.siemListen, allowEmpty: true,
                expected: "HOST:PORT such as 127.0.0.1:9443, or empty to keep the SIEM stream off"),
        .text("siem.server_names", \.siemServerNames),
        .bool("analytics.disabled", \.analyticsDisabled),
        .int("analytics.interval_seconds", \.analyticsIntervalSeconds, 5...86400),
        .int("analytics.window_hours", \.analyticsWindowHours, 1...8760),
        .bool("analytics.leaked_profile.enabled", \.anomaly.leakedProfile),
        .int("analytics.leaked_profile.window_minutes", \.anomaly.leakedProfileWindowMinutes, 1...1440),
        .int("analytics.leaked_profile.min_ips", \.anomaly.leakedProfileMinIPs, 2...100),
        .bool("analytics.concurrent_sessions.enabled", \.anomaly.concurrentSessions),
        .bool("analytics.impossible_travel.enabled", \.anomaly.impossibleTravel),
        .int("analytics.impossible_travel.max_kmh", \.anomaly.impossibleTravelMaxKmh, 100...100_000),
        .int("analytics.impossible_travel.min_km", \.anomaly.impossibleTravelMinKm, 1...20_000),
        .bool("analytics.new_geo.enabled", \.anomaly.newGeo),
        .bool("analytics.revoked_profile_active.enabled", \.anomaly.revokedProfileActive),
        .int("analytics.revoked_profile_active.grace_seconds", \.anomaly.revokedProfileGraceSeconds, 0...86400),
        .bool("analytics.auth_failure_spike.enabled", \.anomaly.authFailureSpike),
        .int("analytics.auth_failure_spike.threshold", \.anomaly.authFailureThreshold, 2...10000),
        .int("analytics.auth_failure_spike.window_minutes", \.anomaly.authFailureWindowMinutes, 1...1440),
        .bool("analytics.dormant_then_active.enabled", \.anomaly.dormantThenActive),
        .int("analytics.dormant_then_active.days", \.anomaly.dormantDays, 1...3650),
        .bool("analytics.off_hours_access.enabled", \.anomaly.offHoursAccess),
        .int("analytics.off_hours_access.max_share_percent", \.anomaly.offHoursMaxSharePercent, 0...100),
        .int("analytics.off_hours_access.min_connects", \.anomaly.offHoursMinConnects, 1...100_000),
        .int("analytics.off_hours_access.min_days", \.anomaly.offHoursMinDays, 0...3650),
        .bool("analytics.data_volume.enabled", \.anomaly.dataVolume),
        .int("analytics.data_volume.min_mib", \.anomaly.dataVolumeMinMiB, 1...10_000_000),
        .int("analytics.data_volume.factor", \.anomaly.dataVolumeFactor, 1...1000),
        .int("analytics.data_volume.min_sessions", \.anomaly.dataVolumeMinSessions, 1...100_000),
    ])

    /// The commented file `cox init` writes.
    public var yaml: String {
        """
        # cox.yaml — PharosVPN controller (\(posture.rawValue) preset). Every key can be
        # overridden by an environment variable: fleet.vpn_subnet -> COX_FLEET_VPN_SUBNET.
        posture: \(posture.rawValue)
        backend: \(backend)            # sqlite, or postgres (two controllers can share one database)
        state_dir: \(stateDir)         # app.db (0600) lives here; relative to this file
        store:
          dsn_file: "\(dsnFile)"           # postgres: a 0600 file holding postgres://USER:PASSWORD@HOST:PORT/DATABASE; empty = <state_dir>/postgres.dsn
        geoip_db: "\(geoipDB)"             # a GeoLite2-City / DB-IP City Lite .mmdb for the GeoIP rules; empty = none
        log:
          level: \(logLevel)
        ui:
          listen: "\(uiListen)"        # admin API and web UI; keep it on localhost (reach it over SSH)
          secure_cookies: \(uiSecureCookies)     # true when the UI is reached over HTTPS
        protocols:
          amneziawg: \(amneziaWG)
          xray: \(xray)
        relay:
          embedded: \(relayEmbedded)
          remote: \(relayRemote)
          client_listen: "\(relayClientListen)"
          public_endpoint: "\(relayPublicEndpoint)"
          max_connections: \(relayMaxConnections)               # embedded relay: client connections in total
          max_connections_per_address: \(relayMaxConnectionsPerAddress)   # ... and from one address
        accounts:
          sync: \(accountsSync)
        retention:
          audit_days: \(auditRetentionDays)
          metrics_days: \(metricsRetentionDays)
        reality:
          decoy_site: \(decoySite)
        fleet:
          vpn_subnet: \(vpnSubnet)
          endpoint_port_min: \(endpointPortMin)
          endpoint_port_max: \(endpointPortMax)
          idle_nodes: \(idleNodes)
          reconcile_interval: \(reconcileInterval)   # seconds between drift sweeps
          unreachable_after_polls: \(unreachableAfterPolls)
          node_call_timeout_seconds: \(nodeCallTimeoutSeconds)
          rotation:
            enabled: \(rotationEnabled)
            interval_seconds: \(rotationIntervalSeconds)
            jitter_seconds: \(rotationJitterSeconds)
        siem:                         # pharos.monitor.v1.MonitorStream over TLS 1.3, for a monitor-scope API token
          listen: "\(siemListen)"       # HOST:PORT; empty = off
          server_names: "\(siemServerNames)" # comma-separated names of its certificate besides the listen host
        analytics:
          disabled: \(analyticsDisabled)
          interval_seconds: \(analyticsIntervalSeconds)
          window_hours: \(analyticsWindowHours)
          leaked_profile:             # one device key from min_ips addresses within window_minutes
            enabled: \(anomaly.leakedProfile)
            window_minutes: \(anomaly.leakedProfileWindowMinutes)
            min_ips: \(anomaly.leakedProfileMinIPs)
          concurrent_sessions:        # one device's sessions open on two nodes at once
            enabled: \(anomaly.concurrentSessions)
          impossible_travel:          # two addresses of one device further apart than min_km at over max_kmh (needs geoip_db)
            enabled: \(anomaly.impossibleTravel)
            max_kmh: \(anomaly.impossibleTravelMaxKmh)
            min_km: \(anomaly.impossibleTravelMinKm)
          new_geo:                    # a device connecting from a country it was never seen in (needs geoip_db)
            enabled: \(anomaly.newGeo)
          revoked_profile_active:     # a removed device's key still let in grace_seconds after the removal
            enabled: \(anomaly.revokedProfileActive)
            grace_seconds: \(anomaly.revokedProfileGraceSeconds)
          auth_failure_spike:         # threshold failed admin logins from one address within window_minutes
            enabled: \(anomaly.authFailureSpike)
            threshold: \(anomaly.authFailureThreshold)
            window_minutes: \(anomaly.authFailureWindowMinutes)
          dormant_then_active:        # a device active again after days without any activity
            enabled: \(anomaly.dormantThenActive)
            days: \(anomaly.dormantDays)
          off_hours_access:           # a connect in a UTC hour that held at most max_share_percent of its earlier ones
            enabled: \(anomaly.offHoursAccess)
            max_share_percent: \(anomaly.offHoursMaxSharePercent)
            min_connects: \(anomaly.offHoursMinConnects)
            min_days: \(anomaly.offHoursMinDays)
          data_volume:                # a session uploading over min_mib and factor times the device's median (experimental)
            enabled: \(anomaly.dataVolume)
            min_mib: \(anomaly.dataVolumeMinMiB)
            factor: \(anomaly.dataVolumeFactor)
            min_sessions: \(anomaly.dataVolumeMinSessions)

        """
    }

    /// `cox init`: writes the preset to `path` (0600), refusing to overwrite without `force`.
    public static func writeInitial(_ config: CoxConfig, to path: String, force: Bool) throws(ConfigError) {
        if FileManager.default.fileExists(atPath: path), !force { throw .exists(component: "cox", path: path) }
        do {
            try Data(config.yaml.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        } catch {
            throw .unreadable(component: "cox", path: path, reason: "cannot write: \(error.localizedDescription)")
        }
    }
}
