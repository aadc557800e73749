import Foundation
import Logging
import PharosProto
import Synchronization
import Testing
@testable import Coxswain

/// A remote relay keeps the newest of the tunnels dialed to it, so with two controllers on
/// one PostgreSQL database (#22) only the leader dials: otherwise each would take the tunnel
/// from the other by turns and clients' calls would fail at random. Runs in `make
/// test-postgres` with a real relay (RelayRunner) and two `cox serve` in this process.
@Suite(.serialized, .enabled(if: TestState.engine == .postgres, "two controllers need the PostgreSQL store"))
struct RelayLeadershipTests {
    @Test func onlyTheLeaderDialsARemoteRelayAndTheStandbyTakesItOver() async throws {
        try await AccountSyncTests.withFleet(.remote) { fleet in
            let relayUp = await Self.eventually { fleet.relayTunnels().values.contains(true) }
            #expect(relayUp, "the leader never dialed the relay")
            let relayID = try #require(fleet.relayTunnels().keys.first)

            // The standby: its own connections to the same database, its own state directory.
            let store = try Store.open(postgres: try #require(fleet.state.store.postgresConfiguration), stateDirectory: "\(fleet.state.dir)/b")
            defer { try? store.close() }
            var config = fleet.controller.config
            config.relayEmbedded = false
            let pki = try FleetPKI.loadOrCreate(in: store)
            let standby = Controller(config: config, store: store, pki: pki, service: FleetService(store: store, pki: pki, config: config))
            let served = ServedBox()
            let serving = Task { try await standby.serve(logger: AccountFleet.logger) { ready in served.value.withLock { $0 = ready } } }
            defer { serving.cancel() }
            #expect(await Self.eventually { served.value.withLock { $0 } != nil }, "the standby's cox serve did not come up")
            let standbyTunnels = { served.value.withLock { $0 }?.relayTunnels() ?? [:] }

            // Several rounds of both controllers' tunnel loops (fleet.reconcile_interval is 2 s).
            try await Task.sleep(for: .seconds(6))
            #expect(standbyTunnels().isEmpty, "the standby dialed the relay: \(standbyTunnels())")
            #expect(fleet.relayTunnels() == [relayID: true], "the leader's tunnel did not stay up")

            // The leader stops: the standby takes the lease, dials the relay, and a device enrolls
            // through the relay against it.
            await fleet.stopController()
            #expect(await Self.eventually(timeout: .seconds(30)) { standbyTunnels()[relayID] == true }, "the new leader never dialed the relay")
            let user = try await fleet.userWithProfile(email: "ann@example.org")
            let invite = try await AccountService(fleet: fleet.state.service).invite(user: user.id, relay: fleet.relayAddr, by: fleet.state.actor)
            var device = AccountFleet.Device()
            var claimed: Pharos_Account_V1_ClaimEnrollmentResponse?
            for _ in 0..<80 where claimed == nil {
                do { claimed = try await fleet.claim(&device, token: invite.link.token) } catch where rpcCode(error) == .unavailable {
                    try await Task.sleep(for: .milliseconds(250))
                }
            }
            #expect(claimed?.relayAddr == fleet.relayAddr)
        }
    }

    final class ServedBox: Sendable {
        let value = Mutex<Controller.Served?>(nil)
    }

    static func eventually(timeout: Duration = .seconds(20), _ condition: () async -> Bool) async -> Bool {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < timeout {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return false
    }
}
