import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import PharosTLS

/// What both relay listeners share: a TCP listener whose connections get a handshake
/// deadline and TLS checked by a `PeerVerifier`, then `configure` adds the listener's own
/// handlers.
enum PeerVerifiedServer {
    static func bind(host: String, port: Int, context: NIOSSLContext, verifier: PeerVerifier, group: any EventLoopGroup,
                     configure: @escaping @Sendable (any Channel) throws -> Void) async throws -> any Channel {
        let callback = verifier.callback
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.socketOption(.so_keepalive), value: 1)
            .childChannelInitializer { connection in
                connection.eventLoop.makeCompletedFuture {
                    // A connection that never finishes its handshake does not hold a slot forever.
                    try connection.pipeline.syncOperations.addHandler(HandshakeDeadline(seconds: 10))
                    try connection.pipeline.syncOperations.addHandler(
                        NIOSSLServerHandler(context: context, customVerificationCallbackWithMetadata: callback))
                    try configure(connection)
                }
            }
            .bind(host: host, port: port).get()
    }
}

/// Closes a connection whose TLS handshake has not completed within the deadline.
final class HandshakeDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let seconds: Int64
    private var timer: Scheduled<Void>?

    init(seconds: Int64) { self.seconds = seconds }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: .seconds(seconds)) { channel.close(promise: nil) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent {
            timer?.cancel()
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func handlerRemoved(context: ChannelHandlerContext) { timer?.cancel() }
}
