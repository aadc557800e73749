import Logging
import NIOCore
import NIOHTTP2
import NIOPosix
import NIOSSL
import NIOTLS
import PharosSpec
import PharosTLS
import X509

/// The public listener: TLS ≥ 1.2 with the relay's leaf; a client certificate is optional
/// at the handshake but, when presented, must be a Device-CA leaf (else the handshake
/// fails). Every HTTP/2 stream becomes a `ClientStreamHandler` with the connection's
/// device fingerprint.
public final class ClientListener: Sendable {
    public let port: Int
    private let channel: any Channel
    private let tls: SwappableTLSContext
    private let roots: TrustRoots

    public static let applicationProtocols = ["h2", "grpc-exp"]

    public static func start(host: String, port: Int, identity: TLSIdentity, roots: TrustRoots, deviceCA: Certificate,
                             upstream: Upstream, limits: HTTP2Limits = HTTP2Limits(), denyList: DeviceDenyList? = nil, logger: Logger,
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> ClientListener {
        let tls = SwappableTLSContext(try serverContext(identity: identity, roots: roots))
        let verifier = PeerVerifier(roots: roots, requirements: PeerRequirements(
            usage: .clientAuth, issuers: [deviceCA], organizations: [PharosIdentity.Organization.device]),
            intermediates: [deviceCA]) { rejection in
                logger.info("client certificate refused", metadata: ["reason": "\(rejection)"])
            }
        let channel = try await VerifiedTLSListener.bind(host: host, port: port, tls: tls, verifier: verifier,
                                                         budget: ConnectionBudget(limits: limits.clientListener), group: group,
                                                         onRefusal: { refusal in
            logger.info("client connection refused", metadata: ["reason": "\(refusal)"])
        }) { connection in
            try connection.pipeline.syncOperations.addHandler(ApplicationProtocolNegotiationHandler { result, channel in
                guard case .negotiated(let proto) = result, applicationProtocols.contains(proto) else {
                    return channel.close()
                }
                return channel.nioSSL_peerValidatedCertificateChain().flatMap { chain in
                    channel.eventLoop.makeCompletedFuture {
                        let fingerprint = try chain?.first.map { Fingerprint.certificate(der: try $0.toDERBytes()) }
                        _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                            mode: .server, connectionConfiguration: limits.clientConnection(certless: fingerprint == nil),
                            streamConfiguration: limits.stream) { stream in
                                stream.eventLoop.makeCompletedFuture {
                                    try stream.syncOptions!.setOption(.autoRead, value: false)
                                    try stream.pipeline.syncOperations.addHandler(ClientStreamHandler(
                                        fingerprint: fingerprint, upstream: upstream, denyList: denyList, limits: limits))
                                }
                            }
                    }
                }
            })
        }
        return ClientListener(port: channel.localAddress?.port ?? port, channel: channel, tls: tls, roots: roots)
    }

    private init(port: Int, channel: any Channel, tls: SwappableTLSContext, roots: TrustRoots) {
        self.port = port
        self.channel = channel
        self.tls = tls
        self.roots = roots
    }

    static func serverContext(identity: TLSIdentity, roots: TrustRoots) throws -> NIOSSLContext {
        try NIOSSLContext(configuration: PharosTLSConfiguration.server(
            identity: identity, roots: roots, clientCertificates: .optional, minimumVersion: .tlsv12,
            applicationProtocols: applicationProtocols))
    }

    /// Presents `identity` (a renewed leaf) from the next handshake on; the port and the
    /// connections already open stay as they are. Throws, changing nothing, when the identity
    /// does not make a TLS context.
    public func replaceIdentity(_ identity: TLSIdentity) throws {
        tls.replace(with: try Self.serverContext(identity: identity, roots: roots))
    }

    public func close() async throws { try await channel.close() }
}
