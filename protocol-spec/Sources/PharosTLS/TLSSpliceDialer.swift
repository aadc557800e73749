import NIOCore
import NIOPosix
import NIOSSL

/// The dialing twin of `TLSFrontDoor`: connects to `host:port` as a TLS client and, once the
/// handshake has verified the server, splices the plaintext to a fresh connection on a local
/// Unix socket. The controller uses it to serve a remote relay's tunnel from its private
/// socket; the returned channel's `closeFuture` says when the splice has ended.
public enum TLSSpliceDialer {
    /// With a `verifier`, it alone decides on the server's chain (NIOSSL's own check, hostname
    /// included, is replaced: put the hostname in its requirements).
    public static func dial(host: String, port: Int, tls: TLSConfiguration, serverHostname: String?,
                            verifier: PeerVerifier? = nil, upstreamSocketPath: String,
                            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> any Channel {
        let context = try NIOSSLContext(configuration: tls)
        return try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = if let verifier {
                        try NIOSSLClientHandler(context: context, serverHostname: serverHostname,
                                                customVerificationCallbackWithMetadata: verifier.callback)
                    } else {
                        try NIOSSLClientHandler(context: context, serverHostname: serverHostname)
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                    try channel.pipeline.syncOperations.addHandler(SpliceAfterHandshake(upstreamSocketPath: upstreamSocketPath))
                }
            }
            .connect(host: host, port: port).get()
    }
}
