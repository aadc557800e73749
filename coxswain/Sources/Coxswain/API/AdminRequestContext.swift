import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// Per request: who called (once `AuthenticateMiddleware` checked the cookie or token) and
/// from where (the socket's address — never a header).
public struct AdminRequestContext: RequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let webSocket: WebSocketHandlerReference<AdminRequestContext>
    public let remoteAddress: SocketAddress?
    public var principal: AdminPrincipal?
    /// Why a credential the caller presented was refused (expired, revoked …), for the 401.
    public var credentialProblem: String?
    /// The `cox_session` cookie's secret, for logout.
    public var sessionToken: String?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.webSocket = .init()
        self.remoteAddress = source.channel.remoteAddress
    }

    public var maxUploadSize: Int { 1 << 20 }

    public var sourceIP: String { remoteAddress?.ipAddress ?? "" }

    /// The audit actor of this request's mutation.
    public var actor: AuditActor {
        principal?.actor(sourceIP: sourceIP) ?? AuditActor(name: "anonymous", kind: .session, sourceIP: sourceIP)
    }
}
