import PharosConfig
import Foundation
import Testing
@testable import Coxswain

@Suite struct ConfigTests {
    let dir = "/tmp/cox-config-\(UUID().uuidString.prefix(8))"

    func write(_ text: String) throws -> String {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = "\(dir)/cox.yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func presetsRoundTripThroughTheFileInitWrites() throws {
        for posture in CoxConfig.Posture.allCases {
            let preset = CoxConfig.preset(posture)
            let path = try write(preset.yaml)
            #expect(try CoxConfig.load(path: path, environment: [:]) == preset)
        }
        let enterprise = CoxConfig.preset(.enterprise)
        #expect(enterprise.xray && enterprise.relayRemote && enterprise.rotationEnabled && enterprise.auditRetentionDays == 365)
        let personal = CoxConfig.preset(.personal)
        #expect(!personal.xray && !personal.relayRemote && !personal.rotationEnabled && personal.auditRetentionDays == 30)
        #expect(personal.vpnSubnet == "10.86.0.0/16" && personal.reconcileInterval == 45 && personal.uiListen == "127.0.0.1:8443")
    }

    @Test func environmentOverridesTheFile() throws {
        let path = try write("fleet:\n  vpn_subnet: 10.1.0.0/24\n")
        let config = try CoxConfig.load(path: path, environment: ["COX_FLEET_VPN_SUBNET": "10.2.0.0/20",
                                                                  "COX_FLEET_ROTATION_ENABLED": "true"])
        #expect(config.vpnSubnet == "10.2.0.0/20" && config.rotationEnabled)
    }

    @Test func everyAnomalyRuleIsSetUnderAnalytics() throws {
        let path = try write("""
            analytics:
              off_hours_access:
                enabled: false
              data_volume:
                min_mib: 64
            """)
        let config = try CoxConfig.load(path: path, environment: ["COX_ANALYTICS_AUTH_FAILURE_SPIKE_THRESHOLD": "9"])
        #expect(!config.anomaly.offHoursAccess && config.anomaly.dataVolumeMinMiB == 64 && config.anomaly.authFailureThreshold == 9)
        #expect(!config.anomaly.enabledRules(geoIP: false).contains("off_hours_access") && config.anomaly.enabledRules(geoIP: false).count == 6)
        #expect(config.anomaly.enabledRules(geoIP: true).count == 8)
        #expect(throws: ConfigError.self) {
            try CoxConfig.load(path: try write("analytics:\n  dormant_then_active:\n    days: 0\n"), environment: [:])
        }
    }

    @Test func badInputIsNamed() throws {
        #expect(throws: ConfigError.invalid(component: "cox", key: "fleet.vpn_subnet", value: "10.1.0.1/24",
                                               expected: "an IPv4 CIDR of /30 or larger, e.g. 10.86.0.0/16")) {
            try CoxConfig.load(path: try write("fleet:\n  vpn_subnet: 10.1.0.1/24\n"), environment: [:])
        }
        #expect(throws: ConfigError.self) { try CoxConfig.load(path: try write("fleet:\n  vpn_subnett: x\n"), environment: [:]) }
        #expect(throws: ConfigError.invalid(component: "cox", key: "backend", value: "mysql", expected: "sqlite or postgres")) {
            try CoxConfig.load(path: try write("backend: mysql\n"), environment: [:])
        }
        #expect(throws: ConfigError.self) { try CoxConfig.load(path: try write("[1, 2"), environment: [:]) }
        #expect(throws: ConfigError.self) { try CoxConfig.load(path: "/nonexistent/x", environment: ["COX_FLEET_RECONCILE_INTERVAL": "0"]) }
    }

    /// `backend: postgres` (or the issue's `store.backend`) reads the DSN from a file beside the
    /// state, or the one `store.dsn_file` names, resolved like `state_dir`.
    @Test func thePostgresBackendNamesItsDSNFile() throws {
        let path = try write("backend: postgres\nstate_dir: /var/lib/cox\n")
        let config = try CoxConfig.load(path: path, environment: [:])
        #expect(config.backend == "postgres" && config.dsnFilePath(relativeTo: "/etc/cox") == "/var/lib/cox/postgres.dsn")
        let named = try CoxConfig.load(path: try write("store:\n  backend: postgres\n  dsn_file: secrets/pg.dsn\n"), environment: [:])
        #expect(named.backend == "postgres" && named.dsnFilePath(relativeTo: "/etc/cox") == "/etc/cox/secrets/pg.dsn")
        #expect(try CoxConfig.load(path: try write(CoxConfig.preset(.enterprise).yaml), environment: [:]).backend == "sqlite")
    }

    @Test func initRefusesToOverwriteWithoutForce() throws {
        let path = try write("posture: personal\n")
        #expect(throws: ConfigError.exists(component: "cox", path: path)) { try CoxConfig.writeInitial(.preset(.enterprise), to: path, force: false) }
        try CoxConfig.writeInitial(.preset(.enterprise), to: path, force: true)
        #expect(try CoxConfig.load(path: path, environment: [:]).posture == .enterprise)
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) == 0o600)
    }
}
