import Logging
import NIOCore
import NIOHTTP2
import NIOPosix
import NIOSSL
import NIOTLS
import PharosSpec
import PharosTLS
import X509

/// The tunnel port: only the controller may connect (mTLS 1.3; a Fleet-CA ClientAuth leaf
/// with O=PharosVPN and CN=coxswain-controller — `PeerRequirements.controller`). Over that
/// one connection the relay is the HTTP/2 *client*: every client stream is a stream on it.
/// The relay PINGs it every 20 s so idle NATs keep it, and closes it when a PING goes
/// unanswered for 10 s (`TunnelKeepalive`).
public final class TunnelListener: Sendable {
    public let port: Int
    private let channel: any Channel
    private let tls: SwappableTLSContext
    private let roots: TrustRoots

    /// `denied`: controller leaves revoked before they expire, refused at the handshake.
    public static func start(host: String, port: Int, identity: TLSIdentity, roots: TrustRoots, fleetCA: Certificate,
                             upstream: Upstream, limits: HTTP2Limits = HTTP2Limits(), denied: DeniedCertificates? = nil, logger: Logger,
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> TunnelListener {
        let tls = SwappableTLSContext(try serverContext(identity: identity, roots: roots))
        let verifier = PeerVerifier(roots: roots, requirements: .controller(fleetCA: [fleetCA], denied: denied)) { rejection in
                logger.warning("tunnel peer refused", metadata: ["reason": "\(rejection)"])
            }
        let channel = try await VerifiedTLSListener.bind(host: host, port: port, tls: tls, verifier: verifier,
                                                         budget: ConnectionBudget(limits: limits.tunnelListener), group: group,
                                                         onRefusal: { refusal in
            logger.warning("tunnel connection refused", metadata: ["reason": "\(refusal)"])
        }) { connection in
            try connection.pipeline.syncOperations.addHandler(TunnelEstablisher(upstream: upstream, limits: limits, logger: logger))
        }
        return TunnelListener(port: channel.localAddress?.port ?? port, channel: channel, tls: tls, roots: roots)
    }

    private init(port: Int, channel: any Channel, tls: SwappableTLSContext, roots: TrustRoots) {
        self.port = port
        self.channel = channel
        self.tls = tls
        self.roots = roots
    }

    static func serverContext(identity: TLSIdentity, roots: TrustRoots) throws -> NIOSSLContext {
        try NIOSSLContext(configuration: PharosTLSConfiguration.server(identity: identity, roots: roots, clientCertificates: .required,
                                                                       minimumVersion: .tlsv13))
    }

    /// Presents `identity` (a renewed leaf) from the next handshake on; the tunnel already
    /// open stays. Throws, changing nothing, when the identity does not make a TLS context.
    public func replaceIdentity(_ identity: TLSIdentity) throws {
        tls.replace(with: try Self.serverContext(identity: identity, roots: roots))
    }

    public func close() async throws { try await channel.close() }
}

/// After the controller's handshake: HTTP/2 client on this connection, handed to `Upstream`.
final class TunnelEstablisher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let upstream: Upstream
    private let limits: HTTP2Limits
    private let logger: Logger

    init(upstream: Upstream, limits: HTTP2Limits, logger: Logger) {
        self.upstream = upstream
        self.limits = limits
        self.logger = logger
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .handshakeCompleted = event as? TLSUserEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        do {
            let channel = context.channel
            let mux = try Upstream.configureConnection(channel, settings: limits, logger: logger)
            try channel.pipeline.syncOperations.addHandler(
                TunnelKeepalive(interval: limits.tunnelPingInterval, timeout: limits.tunnelPingTimeout, logger: logger))
            upstream.attach(channel: channel, multiplexer: mux)
            logger.info("controller tunnel up", metadata: ["peer": "\(channel.remoteAddress.map { "\($0)" } ?? "?")"])
            let logger = self.logger
            channel.closeFuture.whenComplete { _ in logger.warning("controller tunnel down") }
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
        } catch {
            logger.error("cannot set up the tunnel", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
