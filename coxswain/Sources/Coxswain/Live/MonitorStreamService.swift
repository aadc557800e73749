import Foundation
import GRPCCore
import Logging
import PharosProto

/// `pharos.monitor.v1.MonitorStream` (upstream's SIEM stream, reference §4.3): the live
/// plane's session connects and disconnects and its alerts, as protobuf, to a consumer that
/// sends a monitor- or admin-scope API token (`authorization: Bearer cox_mon_…`). The token is
/// checked when the stream opens and again every `recheck` while it runs, events or not, so a
/// revoked or expired token loses its stream. A consumer that falls `LiveHub.bufferSize`
/// messages behind loses the oldest, as a WebSocket does.
public struct MonitorStreamService: Pharos_Monitor_V1_MonitorStream.ServiceProtocol {
    let live: LiveHub
    let admin: AdminService
    let logger: Logger
    let recheck: Duration

    public static let kinds: Set<String> = ["connect", "disconnect", "alert"]

    public init(live: LiveHub, admin: AdminService, logger: Logger, recheck: Duration = .seconds(30)) {
        self.live = live
        self.admin = admin
        self.logger = logger
        self.recheck = recheck
    }

    public func subscribe(request: ServerRequest<Pharos_Monitor_V1_SubscribeRequest>,
                          context: ServerContext) async throws -> StreamingServerResponse<Pharos_Monitor_V1_MonitorEvent> {
        let secret = Self.bearer(request.metadata)
        let principal = try await authorize(secret)
        let kinds = Set(request.message.kinds)
        if let unknown = kinds.subtracting(Self.kinds).sorted().first {
            throw RPCError(code: .invalidArgument, message: "unknown kind \"\(unknown)\": use connect, disconnect or alert (none = all)")
        }
        // Subscribed before the call is answered: nothing published from now on is missed.
        let subscription = live.subscribe()
        let (live, logger, recheck) = (self.live, self.logger, self.recheck)
        let service = self
        logger.info("SIEM consumer subscribed", metadata: ["token": "\(principal.name)", "kinds": "\(kinds.sorted())"])
        return StreamingServerResponse { writer in
            defer {
                live.unsubscribe(subscription.id)
                logger.info("SIEM consumer gone", metadata: ["token": "\(principal.name)"])
            }
            // The token is checked again every `recheck` whether events flow or not: a refusal
            // ends the stream with its status, the stream's end stops the checks.
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await message in subscription.messages {
                        guard let event = Self.monitorEvent(message.event), kinds.isEmpty || kinds.contains(event.type) else { continue }
                        try await writer.write(event)
                    }
                }
                group.addTask {
                    while true {
                        try await Task.sleep(for: recheck)
                        _ = try await service.authorize(secret)
                    }
                }
                _ = try await group.next()
                group.cancelAll()
            }
            return [:]
        }
    }

    /// The token's principal when its scope reaches monitor; otherwise the refusal, as gRPC
    /// status: UNAUTHENTICATED (none, malformed, unknown, revoked, expired) or PERMISSION_DENIED.
    func authorize(_ secret: String?) async throws -> AdminPrincipal {
        guard let secret else {
            throw RPCError(code: .unauthenticated, message: "send a monitor-scope API token: authorization: Bearer cox_mon_… (cox tokens create --scope monitor)")
        }
        switch try await admin.principal(bearer: secret) {
        case .failure(let refusal):
            logger.warning("SIEM consumer refused", metadata: ["reason": "\(refusal)"])
            throw RPCError(code: .unauthenticated, message: refusal.description)
        case .success(let principal) where principal.scope < .monitor:
            throw RPCError(code: .permissionDenied, message: "this API token's scope is \(principal.scope.rawValue); the SIEM stream needs monitor or admin")
        case .success(let principal):
            return principal
        }
    }

    static func bearer(_ metadata: Metadata) -> String? {
        guard let value = metadata[stringValues: "authorization"].first(where: { _ in true }) else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return parts[1].trimmingCharacters(in: .whitespaces)
    }

    /// A live event as upstream's MonitorEvent: PEER_CONNECTED and PEER_DISCONNECTED become
    /// sessions (byte counts on disconnects), alerts alerts; anything else is not streamed.
    static func monitorEvent(_ event: LiveEvent) -> Pharos_Monitor_V1_MonitorEvent? {
        var out = Pharos_Monitor_V1_MonitorEvent()
        switch event {
        case .node(let node):
            guard let type = ["PEER_CONNECTED": "connect", "PEER_DISCONNECTED": "disconnect"][node.type] else { return nil }
            out.type = type
            out.at = .init(seconds: node.at / 1_000_000, nanos: Int32(node.at % 1_000_000) * 1000)
            out.session.eventType = type
            out.session.nodeID = node.nodeID
            out.session.deviceID = node.deviceID ?? ""
            out.session.userID = node.userID ?? ""
            out.session.protocol = node.protocol == "xray-reality" ? "XRAY_REALITY" : "AMNEZIAWG"
            out.session.sourceIp = node.sourceIP
            out.session.sourceEndpoint = node.sourceEndpoint
            out.session.reason = node.reason
            if type == "disconnect" {
                out.session.rxBytes = node.rxBytes
                out.session.txBytes = node.txBytes
            }
        case .alert(let alert):
            out.type = "alert"
            out.at = .init(seconds: alert.at / 1_000_000, nanos: Int32(alert.at % 1_000_000) * 1000)
            out.alert.id = alert.id
            out.alert.kind = alert.kind
            out.alert.severity = alert.severity.rawValue
            out.alert.deviceID = alert.deviceID ?? ""
            out.alert.userID = alert.userID ?? ""
            out.alert.sourceIps = (try? JSONDecoder().decode([String].self, from: Data(alert.sourceIPs.utf8))) ?? []
            out.alert.detailJson = alert.detail
        case .nodeStatus:
            return nil
        }
        return out
    }
}
