import Foundation
import PharosTLS
import Testing

@Suite struct HostKeyTests {
    @Test func aKeyIsCreatedOnceAt0600AndAMalformedOneIsNeverReplaced() throws {
        let dir = "/tmp/hostkey-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/k/host.key"
        let first = try HostKey.loadOrCreate(at: path)
        #expect(try HostKey.loadOrCreate(at: path).rawRepresentation == first.rawRepresentation)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        try "not a key".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: HostKeyError.unreadable(path: path)) { _ = try HostKey.loadOrCreate(at: path) }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "not a key")
    }

    /// The Debian package's relay runs as pharos-relay and owns /etc/pharos/relay; an operator
    /// runs `relay gen-csr` as root. The key must end up the daemon's, still 0600.
    @Test(.enabled(if: geteuid() == 0, "needs root to create a key for another user"))
    func rootCreatingAKeyInADaemonsDirectoryGivesItToTheDaemon() throws {
        let dir = "/tmp/hostkey-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let nobody = getpwnam("nobody")!.pointee
        #expect(chown(dir, nobody.pw_uid, nobody.pw_gid) == 0)
        _ = try HostKey.certificateSigningRequest(keyPath: "\(dir)/relay.key", commonName: "pharos-relay")
        var info = stat()
        #expect(stat("\(dir)/relay.key", &info) == 0)
        #expect(info.st_uid == nobody.pw_uid && info.st_gid == nobody.pw_gid)
        #expect(info.st_mode & 0o777 == 0o600)
    }
}
