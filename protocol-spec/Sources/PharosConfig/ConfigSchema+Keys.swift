import Foundation
import Logging
import NIOCore
import PharosSpec

/// The value kinds settings share, each with the sentence its refusal says.
extension ConfigSchema.Key {
    public typealias Path<Value> = WritableKeyPath<Config, Value> & Sendable

    /// Any text, taken as written.
    public static func text(_ name: String, _ path: Path<String>) -> Self {
        Self(name) { config, value throws(ConfigValueError) in config[keyPath: path] = value }
    }

    public static func bool(_ name: String, _ path: Path<Bool>) -> Self {
        Self(name) { config, value throws(ConfigValueError) in
            switch value.lowercased() {
            case "true", "yes", "on", "1": config[keyPath: path] = true
            case "false", "no", "off", "0": config[keyPath: path] = false
            default: throw ConfigValueError(expected: "true or false")
            }
        }
    }

    /// A whole number within `range`; `unit` ("seconds", "bytes") completes the sentence.
    public static func int(_ name: String, _ path: Path<Int>, _ range: ClosedRange<Int>, unit: String = "") -> Self {
        Self(name) { config, value throws(ConfigValueError) in
            guard let number = Int(value), range.contains(number) else {
                throw ConfigValueError(expected: "a number \(range.lowerBound)-\(range.upperBound)" + (unit.isEmpty ? "" : " \(unit)"))
            }
            config[keyPath: path] = number
        }
    }

    /// One of an enumeration's raw values.
    public static func oneOf<Value: RawRepresentable & CaseIterable & Sendable>(_ name: String, _ path: Path<Value>) -> Self
    where Value.RawValue == String {
        Self(name) { config, value throws(ConfigValueError) in
            guard let parsed = Value(rawValue: value) else {
                throw ConfigValueError(expected: Value.allCases.map(\.rawValue).joined(separator: ", "))
            }
            config[keyPath: path] = parsed
        }
    }

    /// A swift-log level name, kept as text (`Logger.Level(rawValue:)` reads it back).
    public static func logLevel(_ name: String, _ path: Path<String>) -> Self {
        Self(name) { config, value throws(ConfigValueError) in
            guard Logger.Level(rawValue: value) != nil else {
                throw ConfigValueError(expected: Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))
            }
            config[keyPath: path] = value
        }
    }

    /// A listen address (`HostPort.listen`), kept as written; with `allowEmpty`, an empty
    /// value turns the listener off.
    public static func listen(_ name: String, _ path: Path<String>, allowEmpty: Bool = false,
                              expected: String = "host:port or :port") -> Self {
        Self(name) { config, value throws(ConfigValueError) in
            if !(allowEmpty && value.isEmpty) {
                do { _ = try HostPort.listen(value) } catch { throw ConfigValueError(expected: "\(expected) (\(error))") }
            }
            config[keyPath: path] = value
        }
    }
}

extension ConfigSchema {
    /// The bind address of a listen setting that `load` has checked; `key` names it otherwise.
    public func listenAddress(_ value: String, key: String) throws(ConfigError) -> HostPort {
        do { return try HostPort.listen(value) } catch {
            throw .invalid(component: component, key: key, value: value, expected: "host:port or :port (\(error))")
        }
    }

    /// A bind failure as the operator should read it: which setting, which address, why.
    public func listening<T>(_ key: String, _ address: HostPort, _ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as IOError {
            throw ConfigError.cannotListen(component: component, key: key, address: "\(address)", reason: String(cString: strerror(error.errnoCode)))
        }
    }
}
