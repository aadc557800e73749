import Foundation
import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// The monitoring side: session history, alerts, the live WebSocket and `/metrics`.
extension AdminAPI {
    func addLiveRoutes(monitor: RouterGroup<AdminRequestContext>, admin group: RouterGroup<AdminRequestContext>) {
        monitor.get("api/sessions") { request, _ -> Page<SessionEventDTO> in
            let query = request.uri.queryParameters
            let (limit, offset) = try Self.paging(request)
            let state = query.get("state") ?? "all"
            guard ["all", "open"].contains(state) else { throw Problem(.badRequest, "state must be all or open") }
            let filter = SessionQuery(nodeID: query.get("node"), deviceID: query.get("device"), userID: query.get("user"),
                                      openOnly: state == "open", limit: limit, offset: offset)
            let page = try await store.read { tx in try tx.sessions(filter) }
            return Page(items: page.items.map(SessionEventDTO.init), total: page.total, limit: limit, offset: offset)
        }
        monitor.get("api/alerts") { request, _ -> Page<AlertDTO> in
            let query = request.uri.queryParameters
            let (limit, offset) = try Self.paging(request)
            var filter = AlertQuery(kind: query.get("kind"), nodeID: query.get("node"), deviceID: query.get("device"),
                                    limit: limit, offset: offset)
            if let status = query.get("status") {
                guard let parsed = AlertStatus(rawValue: status) else { throw Problem(.badRequest, "status must be open, acknowledged or resolved") }
                filter.status = parsed
            }
            if let severity = query.get("severity") {
                guard let parsed = AlertSeverity(rawValue: severity) else { throw Problem(.badRequest, "severity must be info, warning or critical") }
                filter.severity = parsed
            }
            let alertQuery = filter
            let page = try await store.read { tx in try tx.alerts(alertQuery) }
            return Page(items: page.items.map(AlertDTO.init), total: page.total, limit: limit, offset: offset)
        }
        for (path, status) in [("alerts/:id/ack", AlertStatus.acknowledged), ("alerts/:id/resolve", .resolved)] {
            group.post(RouterPath(path)) { request, context -> AlertDTO in
                let form = try await Self.body(VersionRequest.self, request, context, orElse: VersionRequest(version: nil))
                let alert = try await service.setAlertStatus(try context.parameters.require("id"), to: status,
                                                             expectedVersion: form.version, by: context.actor)
                return AlertDTO(alert)
            }
        }
        monitor.get("api/analytics/status") { _, _ -> Response in
            let counters = live.counters
            let config = service.config
            let rules = ["fleet_health", "certificate_expiry"] + (config.analyticsDisabled ? [] : config.anomaly.enabledRules(geoIP: !config.geoipDB.isEmpty))
            return try Self.json(AnalyticsStatusDTO(rules: rules, liveSubscribers: counters.subscribers,
                                                    liveEventsPublished: counters.published, liveEventsDropped: counters.dropped))
        }
        monitor.get("api/geoip") { _, _ -> Response in
            let path = service.config.geoipDB
            guard !path.isEmpty else { return try Self.json(GeoIPStatusDTO(enabled: false, path: "")) }
            do {
                let meta = try GeoIPDatabase(path: path).metadata
                return try Self.json(GeoIPStatusDTO(enabled: true, path: path, databaseType: meta.databaseType,
                                                    buildEpoch: meta.buildEpoch, ipVersion: meta.ipVersion,
                                                    description: meta.description))
            } catch {
                return try Self.json(GeoIPStatusDTO(enabled: false, path: path, error: "\(error)"))
            }
        }
        monitor.get("metrics") { _, _ -> Response in
            let text = metrics.exposition(try await metricsSnapshot())
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        monitor.ws("ws/events", shouldUpgrade: { request, context in
            guard request.headers[.upgrade]?.lowercased() == "websocket" else {
                throw Problem(.upgradeRequired, "GET /ws/events is a WebSocket: connect with Upgrade: websocket")
            }
            // A browser sends its cookie with a WebSocket from any page: accept a cookie only
            // from our own origin (cross-site WebSocket hijacking).
            if context.principal?.csrfToken != nil, let origin = request.headers[.origin],
               !Self.sameOrigin(origin, authority: request.head.authority) {
                throw Problem(.forbidden, "WebSocket from another origin (\(origin)) refused")
            }
            return .upgrade([:])
        }, onUpgrade: { inbound, outbound, _ in
            let subscription = live.subscribe()
            defer { live.unsubscribe(subscription.id) }
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask {
                    for try await message in subscription.messages { try await outbound.write(.text(message.json)) }
                }
                tasks.addTask {
                    // The client's close (or any message) ends the subscription.
                    for try await _ in inbound.messages(maxSize: 1 << 12) {}
                }
                _ = try await tasks.next()
                tasks.cancelAll()
            }
        })
    }

    /// `http://127.0.0.1:8443` against the request's `Host` (`127.0.0.1:8443`).
    static func sameOrigin(_ origin: String, authority: String?) -> Bool {
        guard let authority, let url = URL(string: origin), let host = url.host else { return false }
        let port = url.port ?? (url.scheme == "https" ? 443 : 80)
        let expected = authority.contains(":") ? authority : "\(authority):\(url.scheme == "https" ? 443 : 80)"
        let shown = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        return shown.lowercased() == expected.lowercased()
    }

    struct AnalyticsStatusDTO: Encodable, Sendable {
        var rules: [String]
        var liveSubscribers: Int
        var liveEventsPublished: UInt64
        var liveEventsDropped: UInt64

        enum CodingKeys: String, CodingKey {
            case rules
            case liveSubscribers = "live_subscribers", liveEventsPublished = "live_events_published"
            case liveEventsDropped = "live_events_dropped"
        }
    }

    /// `GET /api/geoip`: the database the GeoIP rules use, if any.
    struct GeoIPStatusDTO: Encodable, Sendable {
        var enabled: Bool
        var path: String
        var databaseType: String?
        var buildEpoch: UInt64?
        var ipVersion: Int?
        var description: String?
        var error: String?

        enum CodingKeys: String, CodingKey {
            case enabled, path, description, error
            case databaseType = "database_type", buildEpoch = "build_epoch", ipVersion = "ip_version"
        }
    }

    func metricsSnapshot() async throws -> ControllerMetrics.Snapshot {
        var snapshot = try await store.read { tx in
            var s = ControllerMetrics.Snapshot()
            s.nodes = try tx.nodeCounts()
            s.nodesBehind = try tx.nodesBehindCount()
            s.users = try tx.count(of: "users")
            s.devices = try tx.count(of: "devices")
            s.peers = try tx.count(of: "peers")
            s.auditRows = try tx.count(of: "audit_log")
            s.openAlerts = try tx.alerts(AlertQuery(status: .open, limit: 1)).total + tx.alerts(AlertQuery(status: .acknowledged, limit: 1)).total
            return s
        }
        let tunnels = relayTier?.tunnelStates ?? [:]
        snapshot.relayTunnelsUp = tunnels.values.filter { $0 }.count
        snapshot.relayTunnelsDown = tunnels.values.filter { !$0 }.count
        snapshot.embeddedRelay = relayTier?.embeddedListening ?? false
        snapshot.live = live.counters
        return snapshot
    }
}
