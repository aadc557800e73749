import Logging
import PharosLifecycle
import ServiceLifecycle
import Synchronization
import Testing

@Suite struct DaemonServicesTests {
    let logger = Logger(label: "test")

    struct Boom: Error, Equatable {}

    /// Runs `group` in a task, waits until `ready` holds, triggers graceful shutdown and returns
    /// how the run ended.
    func runThenShutDown(_ group: ServiceGroup, until ready: @Sendable () -> Bool) async -> Result<Void, any Error> {
        let run = Task { try await group.run() }
        while !ready() { try? await Task.sleep(for: .milliseconds(5)) }
        await group.triggerGracefulShutdown()
        return await run.result
    }

    @Test func aPeriodicJobRepeatsUntilShutdownThenTheGroupEndsCleanly() async throws {
        let rounds = Atomic(0)
        let group = DaemonServiceGroup.make([("sweep", PeriodicService(every: .milliseconds(5), start: .immediately) {
            rounds.add(1, ordering: .relaxed)
        })], signals: false, logger: logger)
        let result = await runThenShutDown(group) { rounds.load(ordering: .relaxed) >= 3 }
        #expect(throws: Never.self) { try result.get() }
        let stopped = rounds.load(ordering: .relaxed)
        try await Task.sleep(for: .milliseconds(30))
        let later = rounds.load(ordering: .relaxed)
        #expect(later == stopped, "the job ran again after shutdown")
    }

    @Test func aHeldResourceIsClosedAtShutdownAfterTheServicesStartedLater() async throws {
        let order = Mutex<[String]>([])
        let started = Atomic(false)
        let group = DaemonServiceGroup.make([
            ("listener", HeldService { order.withLock { $0.append("listener closed") } }),
            ("loop", TaskService {
                started.store(true, ordering: .relaxed)
                while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(5)) }
                order.withLock { $0.append("loop stopped") }
            }),
        ], signals: false, logger: logger)
        let result = await runThenShutDown(group) { started.load(ordering: .relaxed) }
        #expect(throws: Never.self) { try result.get() }
        #expect(order.withLock { $0 } == ["loop stopped", "listener closed"])
    }

    @Test func aServiceThatFailsEndsTheGroupWithItsErrorAndClosesTheRest() async throws {
        let closed = Atomic(false)
        let group = DaemonServiceGroup.make([
            ("listener", HeldService { closed.store(true, ordering: .relaxed) }),
            ("watchdog", WatchdogService()),
            ("broken", TaskService { throw Boom() }),
        ], signals: false, logger: logger)
        await #expect(throws: Boom.self) { try await group.run() }
        let wasClosed = closed.load(ordering: .relaxed)
        #expect(wasClosed)
    }

    @Test func theWatchdogWithoutSystemdWaitsForShutdownInsteadOfEndingTheGroup() async throws {
        let group = DaemonServiceGroup.make([("watchdog", WatchdogService())], signals: false, logger: logger)
        let finished = Atomic(false)
        let run = Task {
            defer { finished.store(true, ordering: .relaxed) }
            try await group.run()
        }
        try await Task.sleep(for: .milliseconds(50))
        let endedEarly = finished.load(ordering: .relaxed)
        #expect(!endedEarly, "the group ended before shutdown")
        await group.triggerGracefulShutdown()
        await #expect(throws: Never.self) { try await run.value }
    }
}

@Suite struct OneShotTests {
    @Test func everyWaiterGetsTheValueSetOnce() async {
        let shot = OneShot<Int>()
        async let first = shot.value
        async let second = shot.value
        try? await Task.sleep(for: .milliseconds(10))
        shot.fulfill(7)
        shot.fulfill(8)
        #expect(await first == 7)
        #expect(await second == 7)
        #expect(await shot.value == 7, "a waiter after the fact gets the value at once")
    }

    @Test func aCancelledWaiterGetsNilAndTheOthersStillWait() async {
        let shot = OneShot<Int>()
        let cancelled = Task { await shot.value }
        let waiting = Task { await shot.value }
        try? await Task.sleep(for: .milliseconds(10))
        cancelled.cancel()
        #expect(await cancelled.value == nil)
        shot.fulfill(1)
        #expect(await waiting.value == 1)
    }
}
