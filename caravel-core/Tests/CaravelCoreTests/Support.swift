import Crypto
import Foundation
import PharosSpec
@testable import CaravelCore

/// protocol-spec's format vectors, read in place (the same files upstream's writers produced).
enum Vectors {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("protocol-spec/Tests/PharosSpecTests/Vectors").path

    static func path(_ name: String) -> String { "\(directory)/\(name)" }
    static func bytes(_ name: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path(name))!) }

    static func key(_ name: String) -> [UInt8] {
        let keys = try! JSONValue(parsing: bytes("keys.json"))
        guard case .string(let b64) = keys[name] else { fatalError("no \(name) in keys.json") }
        return Base64.decodeStandard(b64)!
    }

    static var password: [UInt8] { Array("correct horse battery staple".utf8) }
}

/// A scratch directory removed at deinit.
final class Scratch: @unchecked Sendable {
    let path = "/tmp/caravel-test-\(UUID().uuidString.prefix(8))"
    init() { try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    func write(_ name: String, _ bytes: [UInt8]) -> String {
        let file = "\(path)/\(name)"
        _ = FileManager.default.createFile(atPath: file, contents: Data(bytes))
        return file
    }

    /// Every file under `dir` with its bytes: what "the store is untouched" compares.
    static func snapshot(_ dir: String) -> [String: Data] {
        var out: [String: Data] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
            out[name] = FileManager.default.contents(atPath: "\(dir)/\(name)")
        }
        return out
    }
}

extension JSONValue {
    /// A copy with `key` (at the top level) replaced.
    func setting(_ key: String, _ value: JSONValue) -> JSONValue {
        guard case .object(var members) = self else { return self }
        if let i = members.firstIndex(where: { $0.key == key }) { members[i] = JSONMember(key, value) } else { members.append(JSONMember(key, value)) }
        return .object(members)
    }
}
