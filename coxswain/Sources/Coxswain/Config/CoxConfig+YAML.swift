import Foundation
import Relay
import Yams

extension CoxConfig {
    /// Reads `path` (a missing file means the personal preset), then applies `COX_*` overrides.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(CoxConfigError) -> CoxConfig {
        var config = CoxConfig()
        if FileManager.default.fileExists(atPath: path) {
            let text: String
            do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw .unreadable(path: path, reason: (error as NSError).localizedDescription)
            }
            try config.apply(yaml: text, source: path)
        }
        for entry in Self.keys {
            let name = "COX_" + entry.key.uppercased().replacingOccurrences(of: ".", with: "_")
            if let value = environment[name] { try entry.apply(&config, value) }
        }
        return config
    }

    typealias Setter = @Sendable (inout CoxConfig, String) throws(CoxConfigError) -> Void

    static func bool(_ key: String, _ path: WritableKeyPath<CoxConfig, Bool> & Sendable) -> (key: String, apply: Setter) {
        (key, { c, v throws(CoxConfigError) in
            switch v.lowercased() {
            case "true", "yes", "on", "1": c[keyPath: path] = true
            case "false", "no", "off", "0": c[keyPath: path] = false
            default: throw .invalid(key: key, value: v, expected: "true or false")
            }
        })
    }

    static func int(_ key: String, _ path: WritableKeyPath<CoxConfig, Int> & Sendable, _ range: ClosedRange<Int>) -> (key: String, apply: Setter) {
        (key, { c, v throws(CoxConfigError) in
            guard let n = Int(v), range.contains(n) else { throw .invalid(key: key, value: v, expected: "a number \(range.lowerBound)-\(range.upperBound)") }
            c[keyPath: path] = n
        })
    }

    static func text(_ key: String, _ path: WritableKeyPath<CoxConfig, String> & Sendable) -> (key: String, apply: Setter) {
        (key, { c, v throws(CoxConfigError) in c[keyPath: path] = v })
    }

    static let keys: [(key: String, apply: Setter)] = [
        ("posture", { c, v throws(CoxConfigError) in
            guard let p = Posture(rawValue: v) else { throw .invalid(key: "posture", value: v, expected: "personal or enterprise") }
            c.posture = p
        }),
        ("backend", { c, v throws(CoxConfigError) in
            guard v == "sqlite" else {
                throw .invalid(key: "backend", value: v, expected: "sqlite (the PostgreSQL store is not built yet)")
            }
            c.backend = v
        }),
        text("state_dir", \.stateDir),
        ("log.level", { c, v throws(CoxConfigError) in
            guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(v) else {
                throw .invalid(key: "log.level", value: v, expected: "trace, debug, info, notice, warning, error or critical")
            }
            c.logLevel = v
        }),
        ("ui.listen", { c, v throws(CoxConfigError) in
            if !v.isEmpty, (try? RelayConfig.hostPort(v, key: "ui.listen")) == nil {
                throw .invalid(key: "ui.listen", value: v, expected: "HOST:PORT such as 127.0.0.1:8443, or empty to turn the admin API off")
            }
            c.uiListen = v
        }),
        bool("ui.secure_cookies", \.uiSecureCookies),
        bool("protocols.amneziawg", \.amneziaWG), bool("protocols.xray", \.xray),
        bool("relay.embedded", \.relayEmbedded), bool("relay.remote", \.relayRemote),
        text("relay.client_listen", \.relayClientListen), text("relay.public_endpoint", \.relayPublicEndpoint),
        bool("accounts.sync", \.accountsSync),
        int("retention.audit_days", \.auditRetentionDays, 1...36500), int("retention.metrics_days", \.metricsRetentionDays, 1...36500),
        text("reality.decoy_site", \.decoySite),
        ("fleet.vpn_subnet", { c, v throws(CoxConfigError) in
            guard let subnet = IPv4Subnet(v), subnet.prefixLength <= 30 else {
                throw .invalid(key: "fleet.vpn_subnet", value: v, expected: "an IPv4 CIDR of /30 or larger, e.g. 10.86.0.0/16")
            }
            c.vpnSubnet = subnet.description
        }),
        int("fleet.endpoint_port_min", \.endpointPortMin, 1...65535), int("fleet.endpoint_port_max", \.endpointPortMax, 1...65535),
        bool("fleet.rotation.enabled", \.rotationEnabled),
        int("fleet.rotation.interval_seconds", \.rotationIntervalSeconds, 10...86400),
        int("fleet.rotation.jitter_seconds", \.rotationJitterSeconds, 0...86400),
        int("fleet.idle_nodes", \.idleNodes, 0...1000),
        int("fleet.reconcile_interval", \.reconcileInterval, 1...3600),
        int("fleet.unreachable_after_polls", \.unreachableAfterPolls, 1...100),
        int("fleet.node_call_timeout_seconds", \.nodeCallTimeoutSeconds, 1...300),
        bool("analytics.disabled", \.analyticsDisabled),
        int("analytics.interval_seconds", \.analyticsIntervalSeconds, 5...86400),
        int("analytics.window_hours", \.analyticsWindowHours, 1...8760),
    ]

    mutating func apply(yaml text: String, source: String) throws(CoxConfigError) {
        let root: Any?
        do { root = try Yams.load(yaml: text) } catch { throw .unreadable(path: source, reason: "not valid YAML: \(error)") }
        guard let root else { return }
        guard let top = root as? [String: Any] else { throw .unreadable(path: source, reason: "the top level must be a mapping") }
        var flat: [String: String] = [:]
        func flatten(_ map: [String: Any], prefix: String) {
            for (key, value) in map {
                let path = prefix.isEmpty ? key : "\(prefix).\(key)"
                if let nested = value as? [String: Any] { flatten(nested, prefix: path) } else { flat[path] = "\(value)" }
            }
        }
        flatten(top, prefix: "")
        let known = Set(Self.keys.map(\.key))
        if let unknown = flat.keys.sorted().first(where: { !known.contains($0) }) {
            throw .unreadable(path: source, reason: "unknown setting \"\(unknown)\"")
        }
        for entry in Self.keys { if let v = flat[entry.key] { try entry.apply(&self, v) } }
        guard endpointPortMin <= endpointPortMax else {
            throw .invalid(key: "fleet.endpoint_port_min", value: "\(endpointPortMin)", expected: "at most fleet.endpoint_port_max (\(endpointPortMax))")
        }
    }

    /// The commented file `cox init` writes.
    public var yaml: String {
        """
        # cox.yaml — PharosVPN controller (\(posture.rawValue) preset). Every key can be
        # overridden by an environment variable: fleet.vpn_subnet -> COX_FLEET_VPN_SUBNET.
        posture: \(posture.rawValue)
        backend: \(backend)            # sqlite (PostgreSQL is planned)
        state_dir: \(stateDir)         # app.db (0600) lives here; relative to this file
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
        analytics:
          disabled: \(analyticsDisabled)
          interval_seconds: \(analyticsIntervalSeconds)
          window_hours: \(analyticsWindowHours)

        """
    }

    /// `cox init`: writes the preset to `path` (0600), refusing to overwrite without `force`.
    public static func writeInitial(_ config: CoxConfig, to path: String, force: Bool) throws(CoxConfigError) {
        if FileManager.default.fileExists(atPath: path), !force { throw .exists(path: path) }
        do {
            try Data(config.yaml.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        } catch {
            throw .unreadable(path: path, reason: "cannot write: \(error.localizedDescription)")
        }
    }
}
