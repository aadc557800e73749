import Foundation
import Synchronization
import Testing
@testable import Coxswain

/// Issue #19 item 4: password logins cannot be guessed in parallel, cannot tell known from
/// unknown e-mails by time, and cannot exhaust the controller's memory with Argon2id.
@Suite struct LoginThrottleTests {
    @Test func parallelAttemptsGetNoMoreThanTheBudget() async {
        let throttle = LoginThrottle(limit: 5, window: .seconds(300))
        let admitted = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<200 { group.addTask { throttle.attempt("10.0.0.9") == nil } }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(admitted == 5)
        throttle.succeeded("10.0.0.9")
        #expect(throttle.attempt("10.0.0.9") == nil, "a success starts the count over")
    }

    /// A flood of distinct keys (spoofed addresses, made-up e-mails) does not outlive its
    /// window: keys whose failures all left it are swept whenever the table has doubled, so
    /// it holds at most about twice one window's worth.
    @Test func keysWhoseFailuresLeftTheWindowAreSwept() {
        let throttle = LoginThrottle(limit: 5, window: .seconds(300))
        let start = ContinuousClock.now
        for n in 0..<10_000 { _ = throttle.attempt("flood-\(n)", now: start) }
        #expect(throttle.trackedKeys == 10_000, "all within the window: none may be forgotten")
        let later = start + .seconds(301)
        for n in 0..<7_000 { _ = throttle.attempt("later-\(n)", now: later) }
        #expect(throttle.trackedKeys == 7_000, "the first flood is still held: \(throttle.trackedKeys) keys")
        #expect(throttle.attempt("later-1", now: later) == nil, "a key inside its window keeps its count")
    }

    /// 200 parallel wrong-password admin logins from one address: at most the budget reach
    /// the password check, the rest are refused with 429 before any hashing.
    @Test func twoHundredParallelAdminGuessesVerifyAtMostTheBudget() async throws {
        let state = try TestState()
        let user = try await state.service.addUser(name: "Ops", email: "ops@example.com", role: .admin, by: state.actor)
        let gate = PasswordGate()
        _ = try await AccountService(fleet: state.service, passwords: gate).setPassword(user: user.id, password: "long admin password", by: state.actor)
        let admin = AdminService(fleet: state.service, passwords: gate)
        let before = gate.checks
        let outcomes = await withTaskGroup(of: String.self) { group in
            for _ in 0..<200 {
                group.addTask {
                    do { _ = try await admin.login(email: "ops@example.com", password: "guess", sourceIP: "203.0.113.7"); return "in" } catch {
                        if case AdminError.tooManyAttempts = error { return "throttled" }
                        return "wrong"
                    }
                }
            }
            return await group.reduce(into: [String: Int]()) { $0[$1, default: 0] += 1 }
        }
        #expect(outcomes["in"] == nil)
        #expect(outcomes["wrong"] == admin.throttle.limit && outcomes["throttled"] == 200 - admin.throttle.limit, "\(outcomes)")
        #expect(gate.checks - before == admin.throttle.limit, "only admitted attempts are hashed")
    }

    @Test func anUnknownEmailCostsTheSameCheckAsAKnownOne() async throws {
        let state = try TestState()
        let user = try await state.service.addUser(name: "Ann", email: "ann@example.org", by: state.actor)
        let gate = PasswordGate()
        let accounts = AccountService(fleet: state.service, passwords: gate)
        _ = try await accounts.setPassword(user: user.id, password: "correct horse battery", by: state.actor)
        for email in ["ann@example.org", "nobody@example.org"] {
            let before = gate.checks
            await #expect(throws: AccountError.opaqueLoginFailure) {
                _ = try await accounts.authenticate(email: email, password: "wrong", deviceFingerprint: "sha256:aa")
            }
            #expect(gate.checks - before == 1, "\(email) was not checked against a hash")
        }
    }

    /// One account guessed from many devices, and one device guessing many accounts: each is
    /// stopped by its own budget.
    @Test func passwordLoginsAreThrottledPerAccountAndPerDevice() async throws {
        let state = try TestState()
        let accounts = AccountService(fleet: state.service, passwords: PasswordGate())
        for device in 0..<10 {
            await #expect(throws: AccountError.opaqueLoginFailure) {
                _ = try await accounts.authenticate(email: "ann@example.org", password: "guess", deviceFingerprint: "sha256:\(device)")
            }
        }
        await #expect(throws: AccountError.self) {
            do { _ = try await accounts.authenticate(email: "ann@example.org", password: "guess", deviceFingerprint: "sha256:new") } catch {
                guard case AccountError.tooManyAttempts = error else { return }
                throw error
            }
        }
        let device = AccountService(fleet: state.service, passwords: PasswordGate())
        var throttled = 0
        for account in 0..<25 {
            do { _ = try await device.authenticate(email: "u\(account)@example.org", password: "guess", deviceFingerprint: "sha256:one") } catch {
                if case AccountError.tooManyAttempts = error { throttled += 1 }
            }
        }
        #expect(throttled == 5, "a device gets 20 failed logins per 15 minutes")
    }

    /// Parallel password checks beyond the gate's capacity wait or are refused; never more than
    /// `maxConcurrent` Argon2id computations (64 MiB each) run at once.
    @Test func argon2RunsAtMostTwoAtOnce() async throws {
        let state = try TestState()
        let gate = PasswordGate(maxConcurrent: 2, maxWaiting: 8)
        let accounts = AccountService(fleet: state.service, passwords: gate)
        let busy = await withTaskGroup(of: Bool.self) { group in
            for n in 0..<40 {
                group.addTask {
                    do { _ = try await accounts.authenticate(email: "u\(n)@example.org", password: "guess", deviceFingerprint: "sha256:\(n)") } catch {
                        if case AccountError.tooManyAttempts = error { return true }
                    }
                    return false
                }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(gate.highWaterMark <= 2)
        #expect(busy > 0 && gate.checks == 40 - busy, "busy \(busy), checks \(gate.checks)")
    }

    /// A login whose client hung up while it waited for the gate gives its place back at
    /// once: it does not hold a queue slot until its turn, and no Argon2id runs for it.
    @Test func aCancelledWaiterLeavesTheQueueAndRunsNoCheck() async throws {
        let gate = PasswordGate(maxConcurrent: 1, maxWaiting: 1)
        try await gate.acquire()  // the one slot, held by the test
        let waiter = Task { try await gate.verify(password: "guess", against: PasswordGate.decoyHash) }
        while gate.waitingCount == 0 { try await Task.sleep(for: .milliseconds(5)) }
        await #expect(throws: PasswordGate.Busy.self, "the queue is full") { _ = try await gate.verify(password: "x", against: PasswordGate.decoyHash) }
        waiter.cancel()
        await #expect(throws: PasswordGate.Busy.self) { _ = try await waiter.value }
        #expect(gate.waitingCount == 0, "the cancelled waiter still holds its place")
        let next = Task { try await gate.verify(password: "guess", against: PasswordGate.decoyHash) }
        while gate.waitingCount == 0 { try await Task.sleep(for: .milliseconds(5)) }
        gate.release()
        #expect(try await next.value == false)
        #expect(gate.checks == 1, "only the waiter that was not cancelled ran Argon2id")
    }

    /// A device that logs in to its own account between guesses at others keeps its budget:
    /// only the account's count starts over on a success.
    @Test func aSuccessDoesNotResetTheDevicesBudget() async throws {
        let state = try TestState()
        let own = try await state.service.addUser(name: "Mallory", email: "mallory@example.org", by: state.actor)
        let accounts = AccountService(fleet: state.service, passwords: PasswordGate())
        _ = try await accounts.setPassword(user: own.id, password: "mallory's own password", by: state.actor)
        var throttled = 0
        for round in 0..<25 {
            do { _ = try await accounts.authenticate(email: "victim\(round)@example.org", password: "guess", deviceFingerprint: "sha256:m") } catch {
                if case AccountError.tooManyAttempts = error { throttled += 1 }
            }
            _ = try? await accounts.authenticate(email: "mallory@example.org", password: "mallory's own password", deviceFingerprint: "sha256:m")
        }
        #expect(throttled == 5, "the device's 20 failures are counted whatever it logged in to in between")
    }
}
