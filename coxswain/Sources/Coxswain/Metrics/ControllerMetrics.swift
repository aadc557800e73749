import Foundation
import Prometheus

/// What `GET /metrics` exposes, in Prometheus text: fleet gauges (read from the store at each
/// scrape), the reconcile loop and pushes, the relay tier, the live plane and the admin API.
public final class ControllerMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    static let latencyBuckets: [Duration] = [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                                             .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                                             .seconds(1), .seconds(2.5), .seconds(5), .seconds(10)]

    public init() {}

    // MARK: reconcile and pushes

    public func recordPush(_ outcome: FleetReconciler.Outcome, duration: Duration) {
        let label: String
        switch outcome {
        case .applied: label = "applied"
        case .upToDate: label = "up_to_date"
        case .nodeAhead: label = "node_ahead"
        case .failed: label = "failed"
        case .backingOff: label = "backing_off"
        case .removed: label = "removed"
        }
        registry.makeCounter(descriptor: .init(namespace: "pharos", metricName: "pushes", unitName: "total",
                                               helpText: "Config pushes to nodes by outcome"), labels: [("outcome", label)]).increment()
        if label == "applied" || label == "up_to_date" || label == "failed" {
            registry.makeDurationHistogram(descriptor: .init(namespace: "pharos", metricName: "push_duration", unitName: "seconds",
                                                             helpText: "Time from a push's start to the node's answer"),
                                           buckets: Self.latencyBuckets).record(duration)
        }
    }

    public func recordSweep(duration: Duration, polled: Int, healed: Int, failed: Int) {
        registry.makeCounter(descriptor: .init(namespace: "pharos", metricName: "reconcile_sweeps", unitName: "total",
                                               helpText: "Reconcile sweeps over the fleet")).increment()
        registry.makeCounter(descriptor: .init(namespace: "pharos", metricName: "reconcile_healed_nodes", unitName: "total",
                                               helpText: "Nodes a sweep found behind and pushed")).increment(by: Int64(healed))
        registry.makeCounter(descriptor: .init(namespace: "pharos", metricName: "reconcile_failed_polls", unitName: "total",
                                               helpText: "Nodes a sweep could not reach")).increment(by: Int64(failed))
        registry.makeDurationHistogram(descriptor: .init(namespace: "pharos", metricName: "reconcile_sweep_duration", unitName: "seconds",
                                                         helpText: "Duration of one reconcile sweep"),
                                       buckets: Self.latencyBuckets).record(duration)
        gauge("reconcile_last_sweep_nodes", "Nodes polled by the last sweep").set(to: Double(polled))
    }

    // MARK: admin API

    public func recordRequest(route: String, method: String, status: Int, duration: Duration) {
        registry.makeCounter(descriptor: .init(namespace: "pharos", metricName: "http_requests", unitName: "total",
                                               helpText: "Admin API and UI requests"),
                             labels: [("route", route), ("method", method), ("status", String(status))]).increment()
        registry.makeDurationHistogram(descriptor: .init(namespace: "pharos", metricName: "http_request_duration", unitName: "seconds",
                                                         helpText: "Admin API and UI latency"),
                                       labels: [("route", route)], buckets: Self.latencyBuckets).record(duration)
    }

    // MARK: scrape

    public struct Snapshot: Sendable {
        public var nodes: [NodeStatus: Int] = [:]
        public var nodesBehind = 0
        public var users = 0
        public var devices = 0
        public var peers = 0
        public var auditRows = 0
        public var openAlerts = 0
        public var relayTunnelsUp = 0
        public var relayTunnelsDown = 0
        public var embeddedRelay = false
        public var live = LiveHub.Counters(subscribers: 0, published: 0, dropped: 0)

        public init() {}
    }

    /// Sets the gauges from `snapshot` and returns the exposition text.
    public func exposition(_ snapshot: Snapshot) -> String {
        for status in NodeStatus.allCases {
            registry.makeGauge(descriptor: .init(namespace: "pharos", metricName: "nodes", unitName: "",
                                                 helpText: "Nodes by status"),
                               labels: [("status", status.rawValue)]).set(to: Double(snapshot.nodes[status] ?? 0))
        }
        gauge("nodes_behind", "Nodes whose applied revision is behind the intended one").set(to: Double(snapshot.nodesBehind))
        gauge("users", "Users").set(to: Double(snapshot.users))
        gauge("devices", "Devices").set(to: Double(snapshot.devices))
        gauge("peers", "Peers placed on nodes").set(to: Double(snapshot.peers))
        gauge("audit_rows", "Rows in the audit log").set(to: Double(snapshot.auditRows))
        gauge("alerts_open", "Open or acknowledged alerts").set(to: Double(snapshot.openAlerts))
        for (state, count) in [("up", snapshot.relayTunnelsUp), ("down", snapshot.relayTunnelsDown)] {
            registry.makeGauge(descriptor: .init(namespace: "pharos", metricName: "relay_tunnels", unitName: "",
                                                 helpText: "Reverse tunnels to remote relays by state"),
                               labels: [("state", state)]).set(to: Double(count))
        }
        gauge("relay_embedded_up", "1 when the embedded relay listens").set(to: snapshot.embeddedRelay ? 1 : 0)
        gauge("live_subscribers", "WebSocket subscribers of /ws/events").set(to: Double(snapshot.live.subscribers))
        gauge("live_events_published", "Live events published since start").set(to: Double(snapshot.live.published))
        gauge("live_events_dropped", "Live events a slow subscriber lost since start").set(to: Double(snapshot.live.dropped))
        return registry.emitToString()
    }

    private func gauge(_ name: String, _ help: String) -> Gauge {
        registry.makeGauge(descriptor: .init(namespace: "pharos", metricName: name, unitName: "", helpText: help))
    }
}
