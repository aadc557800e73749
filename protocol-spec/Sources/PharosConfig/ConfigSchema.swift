import Foundation
import Logging
import PharosSpec
import Yams

/// How a component reads its YAML settings file (`node.yaml`, `relay.yaml`, `cox.yaml`):
/// nested mappings become `section.key` names, every name must be one of `keys` (a typo
/// is refused, not ignored), and `<PREFIX><SECTION>_<KEY>` environment variables override
/// the file. Each key parses and checks its own value, so a bad one is refused with its
/// name, the value and what was expected.
public struct ConfigSchema<Config>: Sendable {
    /// Sets the value of one key, or says what was expected instead.
    public typealias Apply = @Sendable (inout Config, String) throws(ConfigValueError) -> Void

    public struct Key: Sendable {
        public let name: String
        let apply: Apply

        public init(_ name: String, apply: @escaping Apply) {
            self.name = name
            self.apply = apply
        }
    }

    private func set(_ key: Key, _ value: String, on config: inout Config) throws(ConfigError) {
        do { try key.apply(&config, value) } catch {
            throw .invalid(component: component, key: key.name, value: value, expected: error.expected)
        }
    }

    /// Names the file in errors: "node", "relay", "cox".
    public let component: String
    /// `NODE_`, `RELAY_`, `COX_`.
    public let environmentPrefix: String
    public let keys: [Key]

    public init(component: String, environmentPrefix: String, keys: [Key]) {
        self.component = component
        self.environmentPrefix = environmentPrefix
        self.keys = keys
    }

    /// The environment variable that overrides `key`: `fleet.vpn_subnet` → `COX_FLEET_VPN_SUBNET`.
    public func environmentName(of key: String) -> String {
        environmentPrefix + key.uppercased().replacingOccurrences(of: ".", with: "_")
    }

    /// Reads `path` over `defaults` when the file exists (a missing file means defaults),
    /// then applies the environment's overrides.
    public func load(path: String, defaults: Config, environment: [String: String]) throws(ConfigError) -> Config {
        var config = defaults
        if FileManager.default.fileExists(atPath: path) {
            let text: String
            do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw .unreadable(component: component, path: path, reason: (error as NSError).localizedDescription)
            }
            try apply(yaml: text, source: path, to: &config)
        }
        try apply(environment: environment, to: &config)
        return config
    }

    /// Applies the `<PREFIX>…` variables of `environment` that name a key.
    public func apply(environment: [String: String], to config: inout Config) throws(ConfigError) {
        for key in keys {
            if let value = environment[environmentName(of: key.name)] { try set(key, value, on: &config) }
        }
    }

    /// Applies the settings of one YAML document, in the order of `keys`.
    public func apply(yaml text: String, source: String, to config: inout Config) throws(ConfigError) {
        let root: Any?
        do { root = try Yams.load(yaml: text) } catch {
            throw .unreadable(component: component, path: source, reason: "not valid YAML: \(error)")
        }
        guard let root else { return }
        guard let top = root as? [String: Any] else {
            throw .unreadable(component: component, path: source, reason: "the top level must be a mapping")
        }
        var flat: [String: String] = [:]
        func flatten(_ map: [String: Any], prefix: String) {
            for (name, value) in map {
                let path = prefix.isEmpty ? name : "\(prefix).\(name)"
                if let nested = value as? [String: Any] { flatten(nested, prefix: path) } else { flat[path] = "\(value)" }
            }
        }
        flatten(top, prefix: "")
        let known = Set(keys.map(\.name))
        if let unknown = flat.keys.sorted().first(where: { !known.contains($0) }) {
            throw .unknownSetting(component: component, path: source, key: unknown, known: known.sorted())
        }
        for key in keys { if let value = flat[key.name] { try set(key, value, on: &config) } }
    }
}

/// What a key expected instead of the value it was given ("a number 1-300 seconds").
public struct ConfigValueError: Error, Equatable, Sendable {
    public var expected: String
    public init(expected: String) { self.expected = expected }
}

/// A settings file that cannot be used, and why: one error type for every component.
public enum ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    case unreadable(component: String, path: String, reason: String)
    case unknownSetting(component: String, path: String, key: String, known: [String])
    case invalid(component: String, key: String, value: String, expected: String)
    /// `init` would overwrite an existing file.
    case exists(component: String, path: String)
    /// A listen setting's address cannot be bound.
    case cannotListen(component: String, key: String, address: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let component, let path, let reason): "cannot read \(component) config \(path): \(reason)"
        case .unknownSetting(let component, let path, let key, let known):
            "\(component) config \(path): unknown setting \"\(key)\" (known: \(known.joined(separator: ", ")))"
        case .invalid(let component, let key, let value, let expected):
            "\(component) config: \(key) = \"\(value)\" is invalid; expected \(expected)"
        case .exists(let component, let path): "\(path) already exists; pass --force to overwrite this \(component) config"
        case .cannotListen(let component, let key, let address, let reason):
            "cannot listen on \(address) (\(key)): \(reason); is another program using that port? Change \(key) in \(component).yaml"
        }
    }
}
