import Foundation
import Logging
import Synchronization

/// Which `cox serve` does the fleet's background work when several share one PostgreSQL
/// database (#22): the holder of a session advisory lock (`PostgresLease`) runs the reconcile
/// sweep, the nodes' event streams, node certificate renewal, retention and the alert sweeps,
/// and pushes what the other controllers and `cox` commands commit (it LISTENs for the
/// `pharos_nodes` notifications the schema's trigger sends at commit). Every controller serves
/// the admin API and the account plane and pushes its own commits at once. The lock lives
/// with the leader's database session: when that process dies, PostgreSQL drops it and a
/// standby's next `renew()` (every `renewInterval`) takes over. On SQLite there is one
/// controller, always the leader.
final class FleetLeadership: Sendable {
    static let renewInterval = Duration.seconds(2)

    private let lease: PostgresLease?
    private let leading: Atomic<Bool>
    let logger: Logger

    init(store: Store, logger: Logger) {
        self.lease = store.postgresConfiguration.map { PostgresLease(configuration: $0) }
        self.leading = Atomic(store.postgresConfiguration == nil)
        self.logger = logger
    }

    var isLeader: Bool { leading.load(ordering: .acquiring) }

    /// `leader` or `standby`, as `/healthz` reports it.
    var role: String { isLeader ? "leader" : "standby" }

    enum Change: Equatable { case none, gained, lost }

    /// Takes the lease, or checks it is still held; what changed.
    func renew() async -> Change {
        guard let lease else { return .none }
        let held = await lease.tryAcquire()
        let was = leading.exchange(held, ordering: .acquiringAndReleasing)
        switch (was, held) {
        case (false, true):
            logger.notice("leading the fleet: this controller now runs the sweep, the event streams and the pushes of others' commits")
            return .gained
        case (true, false):
            let error = await lease.lastError ?? ""
            logger.warning("lost the fleet lease; standing by", metadata: ["error": "\(error)"])
            return .lost
        default:
            return .none
        }
    }

    func release() async {
        await lease?.release()
        leading.store(lease == nil, ordering: .releasing)
    }
}
