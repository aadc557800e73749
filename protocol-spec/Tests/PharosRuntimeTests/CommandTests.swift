import Foundation
import Testing
@testable import PharosRuntime

/// Root processes (the daemons, `caravel connect`) run `ip`, `wg` and friends found by name:
/// a `$PATH` directory that another user can write must not supply them.
@Suite struct CommandTests {
    @Test func asRootAPathDirectoryOthersCanWriteIsSkipped() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cmd-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let planted = "\(dir)/pharos-planted-tool"
        try "#!/bin/sh\n".write(toFile: planted, atomically: true, encoding: .utf8)
        chmod(planted, 0o755)
        chmod(dir, 0o755)
        #expect(Command.locate("pharos-planted-tool", path: dir, asRoot: false) == planted)
        if geteuid() == 0 {
            #expect(Command.locate("pharos-planted-tool", path: dir, asRoot: true) == planted, "root's own 0755 directory is trusted")
        }
        chmod(dir, 0o777)
        #expect(Command.locate("pharos-planted-tool", path: dir, asRoot: true) == nil, "a world-writable directory supplied a tool to root")
        chmod(dir, 0o775)
        #expect(Command.locate("pharos-planted-tool", path: dir, asRoot: true) == nil, "a group-writable directory supplied a tool to root")
        #expect(Command.locate("pharos-planted-tool", path: "relative/dir", asRoot: true) == nil)
        #expect(Command.locate("sh", path: dir, asRoot: true) == nil || Command.locate("sh", path: dir, asRoot: true)?.hasPrefix("/") == true)
    }

    @Test func systemToolsAreStillFoundAsRoot() {
        #expect(Command.locate("ip", path: "/usr/sbin:/usr/bin:/sbin:/bin", asRoot: true) != nil)
    }
}
