import Foundation
import PharosConfig
import Testing

/// The one settings reader of node, relay and cox, on a small schema of its own.
@Suite struct ConfigSchemaTests {
    struct Settings: Sendable, Equatable {
        enum Mode: String, Sendable, CaseIterable { case fast, safe }
        var listen = ":8444"
        var level = "info"
        var seconds = 5
        var enabled = false
        var mode = Mode.safe
        var note = ""
    }

    static let schema = ConfigSchema<Settings>(component: "probe", environmentPrefix: "PROBE_", keys: [
        .listen("control.listen_addr", \.listen),
        .logLevel("log.level", \.level),
        .int("poll.seconds", \.seconds, 1...300, unit: "seconds"),
        .bool("feature.deep.enabled", \.enabled),
        .oneOf("mode", \.mode),
        .text("note", \.note),
    ])

    func write(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("probe-\(UUID().uuidString).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func aMissingFileMeansDefaultsAndTheEnvironmentOverridesTheFile() throws {
        #expect(try Self.schema.load(path: "/nonexistent/probe.yaml", defaults: Settings(), environment: [:]) == Settings())
        let path = try write("control:\n  listen_addr: 127.0.0.1:9000\npoll:\n  seconds: 30\nfeature:\n  deep:\n    enabled: yes\nmode: fast\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let loaded = try Self.schema.load(path: path, defaults: Settings(), environment: ["PROBE_POLL_SECONDS": "7", "PROBE_LOG_LEVEL": "debug"])
        #expect(loaded == Settings(listen: "127.0.0.1:9000", level: "debug", seconds: 7, enabled: true, mode: .fast, note: ""))
        #expect(Self.schema.environmentName(of: "feature.deep.enabled") == "PROBE_FEATURE_DEEP_ENABLED")
    }

    @Test(arguments: [
        ("poll:\n  seconds: 0\n", ConfigError.invalid(component: "probe", key: "poll.seconds", value: "0", expected: "a number 1-300 seconds")),
        ("mode: turbo\n", .invalid(component: "probe", key: "mode", value: "turbo", expected: "fast, safe")),
        ("feature:\n  deep:\n    enabled: maybe\n", .invalid(component: "probe", key: "feature.deep.enabled", value: "maybe", expected: "true or false")),
        ("log:\n  level: loud\n", .invalid(component: "probe", key: "log.level", value: "loud",
                                            expected: "trace, debug, info, notice, warning, error, critical")),
    ])
    func aBadValueIsRefusedWithItsKeyAndWhatWasExpected(yaml: String, error: ConfigError) throws {
        let path = try write(yaml)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: error) { try Self.schema.load(path: path, defaults: Settings(), environment: [:]) }
    }

    @Test func hostileFilesAreRefusedWithAReason() throws {
        let typo = try write("poll:\n  secondz: 3\n")
        let notYAML = try write("[1, 2")
        let list = try write("- a\n- b\n")
        defer { for p in [typo, notYAML, list] { try? FileManager.default.removeItem(atPath: p) } }
        let unknown = #expect(throws: ConfigError.self) { try Self.schema.load(path: typo, defaults: Settings(), environment: [:]) }
        #expect(unknown?.description.contains("unknown setting \"poll.secondz\"") == true)
        let broken = #expect(throws: ConfigError.self) { try Self.schema.load(path: notYAML, defaults: Settings(), environment: [:]) }
        #expect(broken?.description.contains("not valid YAML") == true)
        let top = #expect(throws: ConfigError.self) { try Self.schema.load(path: list, defaults: Settings(), environment: [:]) }
        #expect(top?.description.contains("top level must be a mapping") == true)
        let listen = #expect(throws: ConfigError.self) {
            try Self.schema.load(path: "/nonexistent", defaults: Settings(), environment: ["PROBE_CONTROL_LISTEN_ADDR": "2001:db8::1:1"])
        }
        #expect(listen?.description.contains("must be in brackets") == true, "\(String(describing: listen))")
    }
}
