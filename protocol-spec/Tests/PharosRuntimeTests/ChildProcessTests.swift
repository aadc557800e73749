import Foundation
import PharosRuntime
import Synchronization
import Testing

/// Real children: /bin/sleep, /bin/sh, /bin/false.
@Suite struct ChildProcessTests {
    final class Exits: Sendable {
        let all = Mutex<[ChildProcess.Exit]>([])
        func record(_ exit: ChildProcess.Exit) { all.withLock { $0.append(exit) } }
        func wait(for count: Int) async -> [ChildProcess.Exit] {
            for _ in 0..<300 where all.withLock({ $0.count }) < count { try? await Task.sleep(for: .milliseconds(10)) }
            return all.withLock { $0 }
        }
    }

    @Test func aStoppedChildIsGoneAndItsExitWasRequested() async throws {
        let child = ChildProcess(), exits = Exits()
        try child.start("/bin/sleep", arguments: ["30"], onExit: exits.record)
        #expect(child.isRunning)
        let pid = try #require(child.pid)
        await child.stop(grace: .seconds(2))
        #expect(!child.isRunning && child.pid == nil)
        #expect(kill(pid, 0) != 0, "the process must be gone once stop returns")
        #expect(await exits.wait(for: 1).map(\.requested) == [true])
    }

    /// Spawned from a concurrency thread (which blocks nearly every signal), the child must
    /// still die of SIGTERM at once; through Foundation's Process it waited for the SIGKILL.
    @Test func sigtermReachesTheChild() async throws {
        let child = ChildProcess(), exits = Exits()
        try child.start("/bin/sleep", arguments: ["30"], onExit: exits.record)
        let started = ContinuousClock.now
        await child.stop(grace: .seconds(10))
        #expect(ContinuousClock.now - started < .seconds(5), "stopped after \(ContinuousClock.now - started)")
        #expect(await exits.wait(for: 1) == [ChildProcess.Exit(status: 128 + SIGTERM, requested: true)])
    }

    /// Stopping from a cancelled task (shutdown) still waits for the child instead of spinning.
    @Test func aCancelledCallerStillStopsTheChild() async throws {
        let child = ChildProcess()
        try child.start("/bin/sh", arguments: ["-c", "trap '' TERM; sleep 30 & wait"])
        try await Task.sleep(for: .milliseconds(100))
        let stopping = Task { await child.stop(grace: .milliseconds(300)) }
        stopping.cancel()
        await stopping.value
        #expect(!child.isRunning)
    }

    /// Descriptors of the parent do not leak into the child.
    @Test func theChildInheritsNoDescriptorBeyondStdio() async throws {
        let probe = FileManager.default.temporaryDirectory.appendingPathComponent("fds-\(UUID().uuidString)").path
        let held = open("/dev/null", O_RDONLY)  // no O_CLOEXEC: would be inherited by a plain spawn
        defer { close(held) }
        let child = ChildProcess()
        try child.start("/bin/sh", arguments: ["-c", "ls /proc/$$/fd > \"$0\"", probe])
        await child.waitForExit(poll: .milliseconds(10))
        let fds = try String(contentsOfFile: probe, encoding: .utf8).split(separator: "\n").compactMap { Int($0) }
        #expect(!fds.contains(Int(held)), "descriptor \(held) leaked into the child: \(fds)")
        try? FileManager.default.removeItem(atPath: probe)
    }

    /// A stop reaches what the child started (its process group), not only the child.
    @Test func aStopReachesTheChildsOwnChildren() async throws {
        let child = ChildProcess()
        let pidFile = FileManager.default.temporaryDirectory.appendingPathComponent("grandchild-\(UUID().uuidString)").path
        try child.start("/bin/sh", arguments: ["-c", "sleep 30 & echo $! > \"$0\"; wait", pidFile])
        #expect(await child.waitUntilReady { ((try? String(contentsOfFile: pidFile, encoding: .utf8)) ?? "").hasSuffix("\n") })
        let grandchild = try #require(Int32(String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        await child.stop(grace: .seconds(2))
        // Gone, or a zombie waiting for whoever adopted it (PID 1 here may reap slowly).
        func alive() -> Bool {
            guard let stat = try? String(contentsOfFile: "/proc/\(grandchild)/stat", encoding: .utf8) else { return false }
            return stat.split(separator: ")").last?.split(separator: " ").first != "Z"
        }
        for _ in 0..<100 where alive() { try await Task.sleep(for: .milliseconds(10)) }
        #expect(!alive(), "the grandchild must be gone too")
        try? FileManager.default.removeItem(atPath: pidFile)
    }

    @Test func aChildThatIgnoresSIGTERMIsKilledAfterTheGrace() async throws {
        let child = ChildProcess()
        try child.start("/bin/sh", arguments: ["-c", "trap '' TERM; sleep 30 & wait"])
        try await Task.sleep(for: .milliseconds(100))
        let started = ContinuousClock.now
        await child.stop(grace: .milliseconds(300))
        #expect(!child.isRunning)
        #expect(ContinuousClock.now - started >= .milliseconds(300))
    }

    @Test func aChildThatDiesOnItsOwnSaysSo() async throws {
        let child = ChildProcess(), exits = Exits()
        try child.start("/bin/false", arguments: [], onExit: exits.record)
        await child.waitForExit(poll: .milliseconds(10))
        #expect(await exits.wait(for: 1) == [ChildProcess.Exit(status: 1, requested: false)])
        #expect(await !child.waitUntilReady(timeout: .seconds(1)) { false }, "a dead child is never ready")
        await child.stop()
    }

    @Test func readinessIsReportedWhileTheChildRuns() async throws {
        let child = ChildProcess()
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("ready-\(UUID().uuidString)").path
        try child.start("/bin/sh", arguments: ["-c", "sleep 0.2; touch \"$0\"; sleep 30", marker])
        #expect(await child.waitUntilReady(timeout: .seconds(5)) { FileManager.default.fileExists(atPath: marker) })
        await child.stop(grace: .seconds(1))
        try? FileManager.default.removeItem(atPath: marker)
    }
}

@Suite struct AsyncLockTests {
    actor Log {
        var events: [String] = []
        func add(_ event: String) { events.append(event) }
    }

    @Test func oneHolderPerKeyInArrivalOrderAndKeysInParallel() async throws {
        let lock = KeyedAsyncLock<String>(), log = Log()
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<5 {
                group.addTask {
                    await lock.withLock("node-a") {
                        await log.add("start \(index)")
                        try? await Task.sleep(for: .milliseconds(20))
                        await log.add("end \(index)")
                    }
                }
                try? await Task.sleep(for: .milliseconds(2))  // arrival order
            }
            group.addTask {
                await lock.withLock("node-b") { await log.add("b") }
            }
        }
        let events = await log.events
        let a = events.filter { $0 != "b" }
        #expect(a == (0..<5).flatMap { ["start \($0)", "end \($0)"] }, "never two holders of one key, first come first served: \(a)")
        let b = try #require(events.firstIndex(of: "b"))
        #expect(b < events.count - 1, "another key does not wait for node-a's queue")
        #expect(lock.heldKeys.isEmpty)
    }

    @Test func aThrowingBodyReleasesTheLock() async {
        struct Refused: Error {}
        let lock = AsyncLock()
        await #expect(throws: Refused.self) { try await lock.withLock { () async throws(Refused) -> Void in throw Refused() } }
        #expect(!lock.isHeld)
        #expect(await lock.withLock { 7 } == 7)
    }
}
