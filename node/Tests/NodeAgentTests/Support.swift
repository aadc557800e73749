import Foundation
import Logging
@testable import NodeAgent

enum Support {
    static func temporaryDirectory() throws -> String {
        // Short: Unix socket paths are limited to 108 bytes.
        let path = "/tmp/phn-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return path
    }

    static let logger = Logger(label: "test.node")

    static func key() -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        for i in bytes.indices { bytes[i] = .random(in: 0...255) }
        return Data(bytes).base64EncodedString()
    }

    static func mode(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as! NSNumber).intValue
    }
}
