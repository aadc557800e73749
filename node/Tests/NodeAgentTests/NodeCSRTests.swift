import PharosRuntime
import PharosTLS
import Foundation
import Testing
@testable import NodeAgent

@Suite struct NodeCSRTests {
    @Test func keyIsCreatedOnceAt0600AndOpenSSLVerifiesTheCSR() throws {
        let dir = try Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let paths = NodePaths(directory: dir)
        let first = try NodeCSR.generate(paths: paths)
        let key = try String(contentsOfFile: paths.key, encoding: .utf8)
        let second = try NodeCSR.generate(paths: paths)
        #expect(try String(contentsOfFile: paths.key, encoding: .utf8) == key, "gen-csr must not replace the key")
        #expect(try Support.mode(paths.key) == 0o600)
        #expect(first.hasPrefix("-----BEGIN CERTIFICATE REQUEST-----"))
        try first.write(toFile: "\(dir)/a.csr", atomically: true, encoding: .utf8)
        try second.write(toFile: "\(dir)/b.csr", atomically: true, encoding: .utf8)
        for csr in ["a.csr", "b.csr"] {
            let out = try Command.run(["openssl", "req", "-in", "\(dir)/\(csr)", "-noout", "-verify", "-pubkey"])
            #expect(out.contains("-----BEGIN PUBLIC KEY-----"))
        }
        let pubA = try Command.run(["openssl", "req", "-in", "\(dir)/a.csr", "-noout", "-pubkey"])
        let pubB = try Command.run(["openssl", "req", "-in", "\(dir)/b.csr", "-noout", "-pubkey"])
        #expect(pubA == pubB)
    }

    @Test func aCorruptKeyIsNeverReplaced() throws {
        let dir = try Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let paths = NodePaths(directory: dir)
        try "garbage".write(toFile: paths.key, atomically: true, encoding: .utf8)
        #expect(throws: HostKeyError.self) { _ = try NodeCSR.generate(paths: paths) }
        #expect(try String(contentsOfFile: paths.key, encoding: .utf8) == "garbage")
    }
}
