import PharosProto

/// What the controller knows of one node between calls, and what it does next: the decision
/// core of `FleetReconciler`, with no I/O, so every branch is table-tested without a node.
/// The reconciler feeds it what happened (a push applied, a call failed, a status seen) and
/// asks it what to do (send or skip a push, poll or skip a node in a sweep, heal how).
struct NodeReconcileState: Sendable, Equatable {
    /// The revision the node last confirmed; nil after a failure or when a heal forces a push.
    var knownApplied: Int64?
    /// SetNetworkConfig was sent in this controller run.
    var networkConfigured = false
    /// The network config last sent to the node in this run (transit routes included).
    var sentNetwork: Pharos_Node_V1_NetworkConfig?
    /// Consecutive failed calls and when the next sweep may try again.
    var failures = 0
    var retryAt: ContinuousClock.Instant?

    /// What a push does before any call.
    enum PushDecision: Equatable {
        /// The node confirmed this revision or a newer one already.
        case upToDate(revision: Int64)
        case send
    }

    /// What a sweep does with a node before any call.
    enum SweepDecision: Equatable {
        case skipStopped
        case backingOff(failures: Int)
        case poll
    }

    /// What a sweep does once the node reported its applied revision.
    enum HealAction: Equatable {
        case inSync
        /// The node is behind the store: push the store's config.
        case push
        /// The node is ahead of the store (a restored backup): move the store past it, then push.
        case raiseStoreThenPush(above: Int64)
    }

    /// A failed call's consequence.
    struct Backoff: Equatable {
        var failures: Int
        var retryAt: ContinuousClock.Instant
        /// This failure is the one that makes the node `unreachable` (said once, not every poll).
        var becameUnreachable: Bool
    }

    /// Back-off after `failures` consecutive failures: 1 s doubling to 60 s.
    static func backoffDelay(failures: Int) -> Duration {
        .seconds(min(60, 1 << min(max(failures, 1) - 1, 6)))
    }

    /// A push an operator did not ask for (a sweep's) waits out the back-off.
    func blocksAutomaticPush(now: ContinuousClock.Instant) -> Bool {
        guard let retryAt else { return false }
        return retryAt > now
    }

    func pushDecision(intended revision: Int64) -> PushDecision {
        if let knownApplied, knownApplied >= revision { return .upToDate(revision: knownApplied) }
        return .send
    }

    func sweepDecision(stopped: Bool, now: ContinuousClock.Instant) -> SweepDecision {
        if stopped { return .skipStopped }
        if blocksAutomaticPush(now: now) { return .backingOff(failures: failures) }
        return .poll
    }

    static func healAction(reported applied: Int64, intended: Int64) -> HealAction {
        if applied > intended { return .raiseStoreThenPush(above: applied) }
        return applied == intended ? .inSync : .push
    }

    /// The node applied `revision` (or answered that it serves it).
    mutating func applied(_ revision: Int64) {
        knownApplied = revision
        failures = 0
        retryAt = nil
    }

    /// The node refused a push as stale and reported `applied`, newer than what was pushed.
    mutating func nodeAhead(applied: Int64) {
        knownApplied = applied
    }

    /// GetStatus answered (so the node is reachable again: its back-off ends); whether
    /// SetNetworkConfig is still to be sent this run (it is sent once: the node persists it).
    mutating func statusSeen(applied: Int64) -> Bool {
        knownApplied = applied
        failures = 0
        retryAt = nil
        defer { networkConfigured = true }
        return !networkConfigured
    }

    /// Forwarding, masquerade or isolation changed: send SetNetworkConfig again.
    mutating func networkPolicyChanged() {
        networkConfigured = false
        sentNetwork = nil
    }

    /// A heal pushes regardless of what was cached: the node just said it is not in step.
    mutating func forgetApplied() {
        knownApplied = nil
    }

    mutating func failed(now: ContinuousClock.Instant, unreachableAfter limit: Int) -> Backoff {
        failures += 1
        knownApplied = nil
        let retry = now + Self.backoffDelay(failures: failures)
        retryAt = retry
        return Backoff(failures: failures, retryAt: retry, becameUnreachable: failures == limit)
    }
}
