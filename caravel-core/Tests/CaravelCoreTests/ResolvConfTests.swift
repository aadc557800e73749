import Foundation
import Testing
@testable import CaravelCore

/// #19 item 8: DNS goes to the profile's resolvers while connected, and disconnecting puts
/// back exactly what was there: a file (same bytes, same inode), a symlink (same target) or
/// nothing; a file someone rewrote meanwhile is theirs. On a scratch path, not /etc.
@Suite struct ResolvConfTests {
    let dir: String
    var path: String { "\(dir)/resolv.conf" }

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("caravel-dns-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    func inode() -> ino_t { var info = stat(); lstat(path, &info); return info.st_ino }

    @Test func aFileIsRewrittenInPlaceAndComesBackByteForByte() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let original = "# from DHCP\nnameserver 192.168.1.1\nsearch lan\n"
        try original.write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, 0o640)
        let before = inode()
        let change = try ResolvConf.prepare(servers: ["1.1.1.1", "2606:4700:4700::1111"], interface: "pharos0", path: path)
        #expect(change.original == original && change.symlinkTarget == nil)
        try change.apply(path: path)
        let written = try String(contentsOfFile: path, encoding: .utf8)
        #expect(written.hasSuffix("nameserver 1.1.1.1\nnameserver 2606:4700:4700::1111\n") && !written.contains("192.168.1.1"))
        #expect(inode() == before, "renamed over: a bind-mounted resolv.conf would have refused")
        #expect(try change.restore(path: path) == .restored)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == original)
        #expect(inode() == before)
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) == 0o640)
    }

    @Test func aSymlinkIsReplacedAndComesBackAsTheSameSymlink() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "nameserver 127.0.0.53\n".write(toFile: "\(dir)/stub-resolv.conf", atomically: false, encoding: .utf8)
        symlink("stub-resolv.conf", path)
        let change = try ResolvConf.prepare(servers: ["1.1.1.1"], interface: "pharos0", path: path)
        #expect(change.symlinkTarget == "stub-resolv.conf" && change.original == nil)
        try change.apply(path: path)
        var info = stat()
        lstat(path, &info)
        #expect(info.st_mode & S_IFMT == S_IFREG, "the symlink was not replaced by a file")
        #expect(try String(contentsOfFile: "\(dir)/stub-resolv.conf", encoding: .utf8) == "nameserver 127.0.0.53\n",
                "not written through the symlink into the resolver's own file")
        #expect(try change.restore(path: path) == .restored)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: path) == "stub-resolv.conf")
    }

    @Test func noFileBeforeMeansNoFileAfter() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let change = try ResolvConf.prepare(servers: ["1.1.1.1"], interface: "pharos0", path: path)
        try change.apply(path: path)
        #expect(FileManager.default.fileExists(atPath: path))
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) == 0o644)
        #expect(try change.restore(path: path) == .restored)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    /// A DHCP client or the administrator rewrote it while connected; or caravel was killed
    /// after recording the change but before writing it.
    @Test func aFileThatNoLongerHoldsWhatCaravelWroteIsLeftAlone() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "nameserver 192.168.1.1\n".write(toFile: path, atomically: false, encoding: .utf8)
        let change = try ResolvConf.prepare(servers: ["1.1.1.1"], interface: "pharos0", path: path)
        #expect(try change.restore(path: path) == .leftAlone, "never applied")
        try change.apply(path: path)
        try "nameserver 10.9.9.9\n".write(toFile: path, atomically: false, encoding: .utf8)
        #expect(try change.restore(path: path) == .leftAlone)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "nameserver 10.9.9.9\n")
    }

    @Test func somethingThatIsNeitherAFileNorASymlinkIsRefused() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        #expect(throws: CaravelError.self) { _ = try ResolvConf.prepare(servers: ["1.1.1.1"], interface: "pharos0", path: path) }
        try FileManager.default.removeItem(atPath: path)
        try Data([0xff, 0xfe, 0x00]).write(to: URL(fileURLWithPath: path))
        #expect(throws: CaravelError.self, "not text") { _ = try ResolvConf.prepare(servers: ["1.1.1.1"], interface: "pharos0", path: path) }
    }

    @Test func resolvedsStubIsRecognised() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        symlink("../run/systemd/resolve/stub-resolv.conf", path)
        #expect(ResolvConf.pointsToResolvedStub(path: path))
        unlink(path)
        try "# managed\nnameserver 127.0.0.53\noptions edns0\n".write(toFile: path, atomically: false, encoding: .utf8)
        #expect(ResolvConf.pointsToResolvedStub(path: path))
        try "nameserver 192.168.1.1\n".write(toFile: path, atomically: false, encoding: .utf8)
        #expect(!ResolvConf.pointsToResolvedStub(path: path))
    }
}
