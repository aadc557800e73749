@testable import Coxswain
import Testing

/// The reconciler's decisions, without a node or a store.
@Suite struct NodeReconcileStateTests {
    let now = ContinuousClock.now

    @Test(arguments: [
        // (known applied, intended, expected)
        (nil as Int64?, 5 as Int64, NodeReconcileState.PushDecision.send),
        (4, 5, .send),
        (5, 5, .upToDate(revision: 5)),
        (9, 5, .upToDate(revision: 9)),
    ])
    func aPushIsSentOnlyWhenTheNodeHasNotConfirmedTheRevision(known: Int64?, intended: Int64, expected: NodeReconcileState.PushDecision) {
        let state = NodeReconcileState(knownApplied: known)
        #expect(state.pushDecision(intended: intended) == expected)
    }

    @Test(arguments: [
        // (reported by the node, intended by the store, expected)
        (Int64(3), Int64(3), NodeReconcileState.HealAction.inSync),
        (2, 3, .push),
        (0, 3, .push),
        (7, 3, .raiseStoreThenPush(above: 7)),
    ])
    func aSweepHealsByTheRevisionTheNodeReports(reported: Int64, intended: Int64, expected: NodeReconcileState.HealAction) {
        #expect(NodeReconcileState.healAction(reported: reported, intended: intended) == expected)
    }

    @Test func failuresBackOffDoublingToAMinuteAndSayUnreachableOnce() {
        var state = NodeReconcileState(knownApplied: 4)
        var delays: [Duration] = []
        var unreachable: [Int] = []
        for _ in 1...9 {
            let backoff = state.failed(now: now, unreachableAfter: 3)
            delays.append(backoff.retryAt - now)
            if backoff.becameUnreachable { unreachable.append(backoff.failures) }
        }
        #expect(delays == [1, 2, 4, 8, 16, 32, 60, 60, 60].map { Duration.seconds($0) })
        #expect(unreachable == [3])
        #expect(state.knownApplied == nil, "after a failure the next push is sent again")
    }

    @Test func aSweepSkipsStoppedNodesAndWaitsOutTheBackoff() {
        var state = NodeReconcileState()
        #expect(state.sweepDecision(stopped: true, now: now) == .skipStopped)
        #expect(state.sweepDecision(stopped: false, now: now) == .poll)
        _ = state.failed(now: now, unreachableAfter: 3)
        _ = state.failed(now: now, unreachableAfter: 3)
        #expect(state.sweepDecision(stopped: false, now: now + .seconds(1)) == .backingOff(failures: 2))
        #expect(state.blocksAutomaticPush(now: now + .seconds(1)))
        #expect(state.sweepDecision(stopped: false, now: now + .seconds(2)) == .poll)
        #expect(!state.blocksAutomaticPush(now: now + .seconds(2)))
    }

    @Test func aSuccessOrAnAnswerEndsTheBackoff() {
        var pushed = NodeReconcileState()
        _ = pushed.failed(now: now, unreachableAfter: 3)
        pushed.applied(6)
        #expect(pushed == NodeReconcileState(knownApplied: 6))

        var polled = NodeReconcileState()
        _ = polled.failed(now: now, unreachableAfter: 3)
        _ = polled.statusSeen(applied: 2)
        #expect(polled.sweepDecision(stopped: false, now: now) == .poll)
        #expect(polled.knownApplied == 2)
    }

    @Test func networkPolicyIsSentOnceUntilItChanges() {
        var state = NodeReconcileState()
        var sends: [Bool] = []
        sends.append(state.statusSeen(applied: 1))
        sends.append(state.statusSeen(applied: 1))
        state.networkPolicyChanged()
        sends.append(state.statusSeen(applied: 1))
        sends.append(state.statusSeen(applied: 2))
        #expect(sends == [true, false, true, false])
    }

    @Test func aNodeAheadIsRememberedSoTheStalePushIsNotRetried() {
        var state = NodeReconcileState(knownApplied: 3)
        state.nodeAhead(applied: 8)
        #expect(state.pushDecision(intended: 5) == .upToDate(revision: 8))
        state.forgetApplied()
        #expect(state.pushDecision(intended: 5) == .send)
    }
}
