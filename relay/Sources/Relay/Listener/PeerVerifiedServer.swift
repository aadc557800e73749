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
                     handshakeTimeout: TimeAmount, configure: @escaping @Sendable (any Channel) throws -> Void) async throws -> any Channel {
        let callback = verifier.callback
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.socketOption(.so_keepalive), value: 1)
            .childChannelInitializer { connection in
                connection.eventLoop.makeCompletedFuture {
                    try connection.pipeline.syncOperations.addHandler(
                        NIOSSLServerHandler(context: context, customVerificationCallbackWithMetadata: callback))
                    // A connection that never finishes its handshake does not hold a slot forever.
                    // After the TLS handler, which is what announces a completed handshake.
                    try connection.pipeline.syncOperations.addHandler(HandshakeDeadline(timeout: handshakeTimeout))
                    try configure(connection)
                }
            }
            .bind(host: host, port: port).get()
    }
}

/// Closes a connection whose TLS handshake has not completed within the deadline. It must
/// sit after the TLS handler: the handshake's completion is an inbound event that handler
/// fires towards the tail (placed before it, the deadline never heard of the handshake and
/// closed every connection, the controller's tunnel included, after 10 s).
final class HandshakeDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Pass the event on first: the handlers after this one set the connection up on it,
        // and a handler that has left the pipeline forwards nothing.
        context.fireUserInboundEventTriggered(event)
        if case .handshakeCompleted = event as? TLSUserEvent {
            timer?.cancel()
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) { timer?.cancel() }
}
