import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// Terminates mTLS on a TCP port and splices each verified connection's plaintext
/// bytes to a fresh connection on a local Unix socket, where an ordinary server
/// (grpc-swift over HTTP/2) listens without TLS.
///
/// Why: grpc-swift's own TLS transport has no way to raise the minimum version to
/// TLS 1.3 or to log why a handshake was refused. Here both are ours: the context
/// comes from `PharosTLSConfiguration.server` and every peer chain goes through a
/// `PeerVerifier`. The trust decision is made once, at the handshake; what reaches
/// the socket has already been authenticated.
public final class TLSFrontDoor: Sendable {
    public let port: Int
    private let channel: any Channel

    /// Binds `host:port` (port 0 picks a free one) and starts accepting, within `limits`.
    public static func start(host: String, port: Int, tls: TLSConfiguration, verifier: PeerVerifier,
                             upstreamSocketPath: String, limits: ListenerLimits = ListenerLimits(),
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                             onRefusal: @escaping @Sendable (ConnectionBudget.Refusal) -> Void = { _ in }) async throws -> TLSFrontDoor {
        try await start(host: host, port: port, tls: SwappableTLSContext(NIOSSLContext(configuration: tls)), verifier: verifier,
                        upstreamSocketPath: upstreamSocketPath, limits: limits, group: group, onRefusal: onRefusal)
    }

    /// As above, each new connection handshaking with what `tls` holds at the time: a renewed
    /// leaf is swapped in without closing the port or any spliced connection.
    public static func start(host: String, port: Int, tls: SwappableTLSContext, verifier: PeerVerifier,
                             upstreamSocketPath: String, limits: ListenerLimits = ListenerLimits(),
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                             onRefusal: @escaping @Sendable (ConnectionBudget.Refusal) -> Void = { _ in }) async throws -> TLSFrontDoor {
        let channel = try await VerifiedTLSListener.bind(host: host, port: port, tls: tls, verifier: verifier,
                                                         budget: ConnectionBudget(limits: limits),
                                                         group: group, onRefusal: onRefusal) { connection in
            try connection.pipeline.syncOperations.addHandler(SpliceAfterHandshake(upstreamSocketPath: upstreamSocketPath))
        }
        return TLSFrontDoor(port: channel.localAddress?.port ?? port, channel: channel)
    }

    private init(port: Int, channel: any Channel) {
        self.port = port
        self.channel = channel
    }

    public func close() async throws {
        try await channel.close()
    }
}

/// Holds inbound bytes until the TLS handshake completes and the upstream socket is
/// connected, then glues the two channels together and steps out of the pipeline. What it
/// holds meanwhile is bounded: a peer that sends more than `maxPendingBytes` before the
/// splice is closed.
final class SpliceAfterHandshake: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    static let maxPendingBytes = 1 << 20

    private enum State {
        case handshaking
        case connecting
        case spliced
        case failed
    }

    private let upstreamSocketPath: String
    private var state = State.handshaking
    private var pending: [ByteBuffer] = []
    private var pendingBytes = 0

    init(upstreamSocketPath: String) {
        self.upstreamSocketPath = upstreamSocketPath
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        pendingBytes += buffer.readableBytes
        guard pendingBytes <= Self.maxPendingBytes else {
            pending.removeAll()
            state = .failed
            context.close(promise: nil)
            return
        }
        pending.append(buffer)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent, case .handshaking = state {
            state = .connecting
            connectUpstream(context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A refused handshake: the PeerVerifier has logged why; just close.
        context.close(promise: nil)
    }

    private func connectUpstream(context: ChannelHandlerContext) {
        let (downstreamGlue, upstreamGlue) = GlueHandler.matchedPair()
        let boundUpstreamGlue = NIOLoopBound(upstreamGlue, eventLoop: context.eventLoop)
        let connected = ClientBootstrap(group: context.eventLoop)
            .channelInitializer { upstream in
                upstream.eventLoop.makeCompletedFuture {
                    try upstream.pipeline.syncOperations.addHandler(boundUpstreamGlue.value)
                }
            }
            .connect(unixDomainSocketPath: upstreamSocketPath)
        connected.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let upstream):
                self.state = .spliced
                for buffer in self.pending { upstream.write(buffer, promise: nil) }
                self.pending.removeAll()
                upstream.flush()
                do {
                    try context.pipeline.syncOperations.addHandler(downstreamGlue, position: .after(self))
                    context.pipeline.syncOperations.removeHandler(self, promise: nil)
                } catch {
                    upstream.close(promise: nil)
                    context.close(promise: nil)
                }
            case .failure:
                self.state = .failed
                context.close(promise: nil)
            }
        }
    }
}

/// Two handlers, one in each channel's pipeline, that forward reads to each other,
/// honouring writability so a slow side applies back-pressure to the fast one.
final class GlueHandler: ChannelDuplexHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    static func matchedPair() -> (GlueHandler, GlueHandler) {
        let first = GlueHandler(), second = GlueHandler()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The partner may have held back a read while this side did not exist yet.
        if context.channel.isWritable { partner?.partnerBecameWritable() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.partner = nil
    }

    private func partnerWrite(_ data: NIOAny) { context?.write(data, promise: nil) }
    private func partnerFlush() { context?.flush() }
    private func partnerWriteEOF() { context?.close(mode: .output, promise: nil) }
    private func partnerCloseFull() { context?.close(promise: nil) }
    private var partnerWritable: Bool { context?.channel.isWritable ?? false }

    private func partnerBecameWritable() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.partnerWrite(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.partnerFlush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.partnerCloseFull()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            partner?.partnerWriteEOF()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        partner?.partnerCloseFull()
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
    }

    func read(context: ChannelHandlerContext) {
        if let partner, partner.partnerWritable {
            context.read()
        } else {
            pendingRead = true
        }
    }
}
