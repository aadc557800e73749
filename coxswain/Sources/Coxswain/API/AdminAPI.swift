import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import ServiceLifecycle

/// The admin HTTP API, the live WebSocket, `/metrics` and the web UI on `ui.listen`
/// (localhost by default). The one place they are assembled: handlers only translate HTTP
/// to calls on the service layer (`FleetService`, `AccountService`, `AdminService`), which
/// writes each mutation's audit row in the mutation's own transaction.
public struct AdminAPI: Sendable {
    public let controller: Controller
    public let admin: AdminService
    public let accounts: AccountService
    public let live: LiveHub
    public let metrics: ControllerMetrics
    public let relayTier: RelayTier?
    let pages: AdminPages
    let logger: Logger
    /// Whether this controller leads the fleet (`/healthz` says); nil outside `cox serve`.
    var leadership: FleetLeadership?

    public init(controller: Controller, admin: AdminService, accounts: AccountService,
                live: LiveHub, metrics: ControllerMetrics, relayTier: RelayTier?, logger: Logger) throws {
        self.controller = controller
        self.admin = admin
        self.accounts = accounts
        self.live = live
        self.metrics = metrics
        self.relayTier = relayTier
        self.pages = try AdminPages()
        self.logger = logger
    }

    var service: FleetService { controller.service }
    var store: Store { controller.store }

    public func router() -> Router<AdminRequestContext> {
        let router = Router(context: AdminRequestContext.self)
        router.add(middleware: ProblemMiddleware(metrics: metrics, logger: logger))
        router.add(middleware: AuthenticateMiddleware(admin: admin))
        let leadership = self.leadership
        router.get("healthz") { _, _ in
            ["status": "ok", "version": CoxswainVersion.line, "role": leadership?.role ?? "leader"]
        }
        router.post("api/auth/login") { request, context in try await login(request, context) }

        let readonly = router.group("api").add(middleware: RequireScope(scope: .readonly))
        let monitor = router.group().add(middleware: RequireScope(scope: .monitor))
        let admin = router.group("api").add(middleware: RequireScope(scope: .admin))
        addAccessRoutes(readonly: readonly, admin: admin)
        addFleetRoutes(readonly: readonly, admin: admin)
        addOnboardingRoutes(readonly: readonly, admin: admin)
        addLiveRoutes(monitor: monitor, admin: admin)
        addPages(to: router)
        return router
    }

    /// The HTTP server on `host:port` as a service: at graceful shutdown in-flight requests
    /// finish and WebSockets close with 1000; `ready` gets the bound port.
    public func application(host: String, port: Int, ready: @escaping @Sendable (Int) -> Void = { _ in }) -> some Service {
        let router = self.router()
        let logger = self.logger
        return Application(
            router: router,
            server: .http1WebSocketUpgrade(webSocketRouter: router, configuration: .init(ws: .init(maxFrameSize: 1 << 16))),
            configuration: .init(address: .hostname(host, port: port), serverName: "coxswain"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? port
                logger.info("admin API and UI listening", metadata: ["address": "\(host):\(bound)"])
                ready(bound)
            },
            logger: logger)
    }

    // MARK: helpers shared by the route files

    static func paging(_ request: Request, defaultLimit: Int = 100) throws -> (limit: Int, offset: Int) {
        let query = request.uri.queryParameters
        var limit = defaultLimit, offset = 0
        if let text = query.get("limit") {
            guard let value = Int(text), (1...1000).contains(value) else { throw Problem(.badRequest, "limit must be 1 to 1000, not \"\(text)\"") }
            limit = value
        }
        if let text = query.get("offset") {
            guard let value = Int(text), value >= 0 else { throw Problem(.badRequest, "offset must be 0 or more, not \"\(text)\"") }
            offset = value
        }
        return (limit, offset)
    }

    /// The JSON body (at most 1 MiB), or `fallback` when the request has none. A body that
    /// does not decode is a 400 naming the field.
    static func body<T: Decodable>(_ type: T.Type, _ request: Request, _ context: AdminRequestContext, orElse fallback: T? = nil) async throws -> T {
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        if buffer.readableBytes == 0, let fallback { return fallback }
        do { return try JSONDecoder().decode(type, from: Data(buffer.readableBytesView)) } catch let error as DecodingError {
            throw Problem(.badRequest, "the request body is not what this route takes: \(Problem.describe(error))")
        }
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let bytes = try encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
