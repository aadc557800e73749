import Foundation
import GRPCCore
import Logging
import PharosProto

/// One WatchEvents stream per node, reopened with back-off (1 s doubling to 60 s) whenever it
/// drops; each stream feeds that node's `ConnectionEventRecorder`.
public actor EventWatchers {
    let store: Store
    let pool: NodeClientPool
    let logger: Logger
    let live: LiveHub?
    private var watchers: [String: (address: String, task: Task<Void, Never>, recorder: ConnectionEventRecorder)] = [:]

    public init(store: Store, pool: NodeClientPool, logger: Logger, live: LiveHub? = nil) {
        self.store = store
        self.pool = pool
        self.logger = logger
        self.live = live
    }

    /// Starts watchers for new nodes, stops those of removed ones.
    public func sync(with nodes: [NodeRecord]) {
        let wanted = Dictionary(uniqueKeysWithValues: nodes.filter { $0.status != .stopped }.map { ($0.id, $0.controlAddr) })
        for (id, watcher) in watchers where wanted[id] != watcher.address {
            watcher.task.cancel()
            watchers[id] = nil
        }
        for (id, address) in wanted where watchers[id] == nil {
            let recorder = ConnectionEventRecorder(nodeID: id, store: store, live: live)
            let (pool, logger) = (self.pool, self.logger)
            let task = Task { await Self.watch(nodeID: id, address: address, pool: pool, recorder: recorder, logger: logger) }
            watchers[id] = (address, task, recorder)
        }
    }

    public func recorder(for nodeID: String) -> ConnectionEventRecorder? { watchers[nodeID]?.recorder }

    public func stopAll() async {
        for (_, watcher) in watchers { watcher.task.cancel() }
        for (_, watcher) in watchers { await watcher.task.value }
        watchers.removeAll()
    }

    static func watch(nodeID: String, address: String, pool: NodeClientPool, recorder: ConnectionEventRecorder, logger: Logger) async {
        var delay = Duration.seconds(1)
        while !Task.isCancelled {
            let opened = ContinuousClock.now
            do {
                let client = try await pool.client(for: nodeID, address: address)
                try await client.watchEvents(Pharos_Node_V1_WatchEventsRequest()) { response in
                    for try await event in response.messages {
                        if event.type == .error {
                            logger.warning("node event", metadata: ["node": "\(nodeID)", "message": "\(event.message)"])
                        }
                        try await recorder.ingest(event)
                    }
                }
            } catch {
                if !Task.isCancelled { logger.debug("event stream ended", metadata: ["node": "\(nodeID)", "error": "\(error)"]) }
            }
            do {
                let closed = try await recorder.streamLost()
                if closed > 0 { logger.info("stream lost", metadata: ["node": "\(nodeID)", "sessions_closed": "\(closed)"]) }
            } catch {
                logger.error("cannot record stream-lost disconnects", metadata: ["node": "\(nodeID)", "error": "\(error)"])
            }
            // A stream that lived a while was healthy: start the back-off over.
            if ContinuousClock.now - opened > .seconds(30) { delay = .seconds(1) }
            try? await Task.sleep(for: delay)
            delay = min(.seconds(60), delay * 2)
        }
    }
}
