import Foundation
import Testing
@testable import CaravelCore

/// Issue #19 item 7: the state file is read back and acted on as root by `down`, `status`
/// and the next `connect`, so it is not trusted blindly.
@Suite(.serialized) struct TunnelStateTests {
    static func genuine(interface: String = "pharos9") -> TunnelState {
        TunnelState(pid: 999_999, daemonPID: 999_998, interface: interface, socketPath: "/var/run/wireguard/\(interface).sock",
                    entry: "lab", profile: "lab", node: "n1", endpoint: "10.78.0.2:51820", address: "10.99.0.2/32",
                    undo: [["ip", "route", "del", "10.78.0.2/32", "via", "10.77.0.2", "dev", "eth0"]], startedAt: Date())
    }

    @Test func aStateCaravelWritesIsTrusted() {
        #expect(Self.genuine().untrustworthy(as: "pharos9") == nil)
        var v6 = Self.genuine()
        v6.endpoint = "[2001:db8::1]:51820"
        v6.undo = [["ip", "route", "del", "2001:db8::1/128", "dev", "eth0"]]
        #expect(v6.untrustworthy(as: "pharos9") == nil)
        var blocked = Self.genuine()
        blocked.undo += [["ip", "-6", "route", "del", "unreachable", "::/1"], ["ip", "-6", "route", "del", "unreachable", "8000::/1"]]
        blocked.resolvConf = ResolvConf(original: "nameserver 10.0.0.1\n", symlinkTarget: nil,
                                        written: ResolvConf.contents(servers: ["1.1.1.1"], interface: "pharos9"))
        #expect(blocked.untrustworthy(as: "pharos9") == nil)
    }

    /// Endpoint rotation: each address of the pool may be pinned once, and only those.
    @Test func aRotatingTunnelMayUndoThePinOfEachOfItsAddressesOnce() {
        var rotating = Self.genuine()
        rotating.endpoint = "10.78.0.3:51820"  // moved since connect
        rotating.rotationHosts = ["10.78.0.2", "10.78.0.3"]
        rotating.undo = [["ip", "route", "del", "10.78.0.2/32", "via", "10.77.0.2", "dev", "eth0"],
                         ["ip", "route", "del", "10.78.0.3/32", "via", "10.77.0.2", "dev", "eth0"]]
        #expect(rotating.untrustworthy(as: "pharos9") == nil)

        var foreign = rotating
        foreign.undo.append(["ip", "route", "del", "192.0.2.1/32", "dev", "eth0"])
        #expect(foreign.untrustworthy(as: "pharos9") != nil, "a pin of an address outside the pool")
        var twice = rotating
        twice.undo.append(["ip", "route", "del", "10.78.0.3/32", "dev", "eth1"])
        #expect(twice.untrustworthy(as: "pharos9") != nil, "two pins of one address")
        for hosts in [["10.78.0.2", "0.0.0.0/0"], ["10.78.0.2", "eth0"], Array(repeating: "10.78.0.9", count: 65)] {
            var bad = rotating
            bad.rotationHosts = hosts
            #expect(bad.untrustworthy(as: "pharos9") != nil, "\(hosts.prefix(2))")
        }
    }

    @Test func aResolvConfChangeCaravelCouldNotHaveRecordedIsRefused() {
        let written = ResolvConf.contents(servers: ["1.1.1.1"], interface: "pharos9")
        for change in [
            ResolvConf(original: "x", symlinkTarget: "/run/x", written: written),
            ResolvConf(original: nil, symlinkTarget: "/run/x\n", written: written),
            ResolvConf(original: String(repeating: "#", count: 70_000), symlinkTarget: nil, written: written),
            ResolvConf(original: nil, symlinkTarget: nil, written: "nameserver 6.6.6.6\n"),
        ] {
            var state = Self.genuine()
            state.resolvConf = change
            #expect(state.untrustworthy(as: "pharos9") != nil, "\(change)")
        }
    }

    @Test(arguments: [
        [["rm", "-rf", "/"]],
        [["ip", "route", "del", "10.0.0.0/8", "table", "main"]],
        [["ip", "route", "del", "10.0.0.0/8", "via", "$(reboot)"]],
        [["ip", "link", "del", "eth0"]],
        [["ip", "route", "del", "0.0.0.0/0", "via", "10.77.0.2", "dev", "eth0"]],
        [["ip", "route", "del", "192.0.2.1/32", "dev", "eth0"]],
        [["ip", "route", "del", "10.78.0.2/32", "dev", "eth0"], ["ip", "route", "del", "10.78.0.2/32", "dev", "eth1"]],
        [["ip", "-6", "route", "del", "::/0"]],
        [["ip", "-6", "route", "del", "unreachable", "::/0"]],
    ] as [[[String]]])
    func undoStepsOtherThanARouteDeletionAreRefused(undo: [[String]]) {
        var state = Self.genuine()
        state.undo = undo
        #expect(state.untrustworthy(as: "pharos9") != nil)
    }

    @Test func foreignSocketsInterfacesAndPidsAreRefused() {
        var socket = Self.genuine()
        socket.socketPath = "/etc/shadow"
        #expect(socket.untrustworthy(as: "pharos9") != nil)
        #expect(Self.genuine(interface: "eth0").untrustworthy(as: "pharos9") != nil, "the file of pharos9 names another interface")
        var pid = Self.genuine()
        pid.pid = -1
        #expect(pid.untrustworthy(as: "pharos9") != nil)
    }

    @Test func onlyARunningCaravelIsTakenForTheClient() {
        #expect(!TunnelState.isClient(getpid(), of: "pharos0"), "the test runner is not caravel")
        #expect(!TunnelState.isClient(1, of: "pharos0"))
        #expect(!TunnelState.isClient(0, of: "pharos0") && !TunnelState.isClient(-1, of: "pharos0"))
    }

    /// A stale state file's pid reused by the client of another tunnel: not this tunnel's.
    @Test func onlyTheClientOfThisInterfaceIsThisTunnelsClient() {
        #expect(TunnelState.connects(["/usr/bin/caravel", "connect", "home"], interface: "pharos0"))
        #expect(!TunnelState.connects(["/usr/bin/caravel", "connect", "home"], interface: "pharos1"))
        #expect(TunnelState.connects(["caravel", "up", "home", "--interface", "pharos1"], interface: "pharos1"))
        #expect(TunnelState.connects(["caravel", "connect", "home", "--interface=pharos1"], interface: "pharos1"))
        #expect(!TunnelState.connects(["caravel", "connect", "home", "--interface", "pharos1"], interface: "pharos0"))
        #expect(!TunnelState.connects(["caravel", "status", "--interface", "pharos0"], interface: "pharos0"))
    }

    /// A planted state file whose "undo" is a command of the planter's choosing: cleaning up
    /// after a dead client must not run it.
    @Test func aPlantedStateFileRunsNothing() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("caravel-run-\(UUID().uuidString.prefix(8))").path
        let victim = "\(dir)/planted-command-ran"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        setenv("CARAVEL_RUN_DIR", dir, 1)
        defer { unsetenv("CARAVEL_RUN_DIR") }
        var planted = Self.genuine()
        planted.undo = [["touch", victim]]
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        try encoder.encode(planted).write(to: URL(fileURLWithPath: TunnelState.path(interface: "pharos9")))
        #expect(throws: CaravelError.self) { _ = try TunnelState.loadChecked(interface: "pharos9") }
        #expect(!LinuxTunnel.cleanUpStale(interface: "pharos9"))
        #expect(!FileManager.default.fileExists(atPath: victim), "the planted undo step was run")
    }

    /// Teardown runs what the file records as root: a file another user could have written
    /// (or a symlink to one) is refused, one written 0600 by this user is read.
    @Test func aStateFileOthersCanWriteIsRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("caravel-run-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        setenv("CARAVEL_RUN_DIR", dir, 1)
        defer { unsetenv("CARAVEL_RUN_DIR") }
        try Self.genuine().save()
        let path = TunnelState.path(interface: "pharos9")
        #expect(try TunnelState.loadChecked(interface: "pharos9")?.undo == Self.genuine().undo)
        chmod(path, 0o666)
        #expect(throws: CaravelError.self) { _ = try TunnelState.loadChecked(interface: "pharos9") }
        chmod(path, 0o600)
        let elsewhere = "\(dir)/elsewhere.json"
        try FileManager.default.moveItem(atPath: path, toPath: elsewhere)
        symlink(elsewhere, path)
        #expect(throws: CaravelError.self) { _ = try TunnelState.loadChecked(interface: "pharos9") }
    }
}
