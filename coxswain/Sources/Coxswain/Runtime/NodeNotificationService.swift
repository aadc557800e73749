import Foundation
import ServiceLifecycle

/// The leader's half of "a change committed on either controller is pushed" (#22): the
/// `pharos_nodes` notifications PostgreSQL sends at each commit that added a node or moved its
/// intended revision are pushed by the leader, coalesced (a burst of commits is one push per
/// node). The committing controller has usually pushed already; the node answers a revision it
/// has with "up to date". After its connection was lost the listener says so and the leader
/// sweeps, since notifications sent meanwhile are gone.
struct NodeNotificationService: Service {
    let configuration: PostgresStoreConfiguration
    let leadership: FleetLeadership
    let reconciler: FleetReconciler

    func run() async throws {
        let listener = PostgresListener(configuration: configuration)
        let pending = NodeSet()
        let (leadership, reconciler) = (leadership, reconciler)
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await payload in listener.notifications(channel: PostgresSchema.nodeChannel) {
                        guard leadership.isLeader else { continue }
                        if payload == PostgresListener.reconnected {
                            await reconciler.sweepAndLog()
                        } else {
                            await pending.insert(payload)
                        }
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        let nodes = await pending.next()
                        if nodes.isEmpty { continue }
                        _ = await reconciler.push(nodes, ignoringBackoff: false)
                    }
                }
                await group.next()
                group.cancelAll()
            }
        }
    }

    /// Node IDs waiting for a push; `next()` waits for at least one and takes them all.
    actor NodeSet {
        private var ids: Set<String> = []
        private var waiter: CheckedContinuation<Void, Never>?

        func insert(_ id: String) {
            ids.insert(id)
            waiter?.resume()
            waiter = nil
        }

        func next() async -> Set<String> {
            if ids.isEmpty {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { continuation in
                        if ids.isEmpty && !Task.isCancelled { waiter = continuation } else { continuation.resume() }
                    }
                } onCancel: {
                    Task { await self.wake() }
                }
            }
            defer { ids = [] }
            return ids
        }

        private func wake() {
            waiter?.resume()
            waiter = nil
        }
    }
}
