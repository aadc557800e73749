import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import PharosSpec
import PharosTLS
import ServiceLifecycle

/// The control port, run as a service: mTLS 1.3 at `TLSFrontDoor`, which accepts only the
/// controller's leaf (`PeerRequirements.controller`: Fleet CA under the root in `ca.crt`,
/// ClientAuth, O=PharosVPN, CN=coxswain-controller), then gRPC over a 0600 Unix socket in the
/// state directory. Only the controller ever connects, so the port holds few connections.
/// NodeLifecycle is served beside NodeControl: a renewed leaf is swapped into the TLS context
/// the port hands each new connection, and a revoked controller leaf is refused at the
/// handshake (`NodeCertificates`).
public struct ControlServer: Service {
    public let paths: NodePaths
    public let config: NodeConfig
    public let service: NodeControlService
    public let certificates: NodeCertificates
    public let logger: Logger
    /// Called with the bound TCP port once both listeners are up.
    let ready: @Sendable (Int) -> Void

    public init(paths: NodePaths, config: NodeConfig, service: NodeControlService, certificates: NodeCertificates,
                logger: Logger, ready: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.paths = paths
        self.config = config
        self.service = service
        self.certificates = certificates
        self.logger = logger
        self.ready = ready
    }

    /// The connection limits of the control port: one controller (a few connections while it
    /// reconnects or runs CLI commands beside `cox serve`).
    static let listenerLimits = ListenerLimits(handshakeTimeout: .seconds(10), maxConnections: 64, maxConnectionsPerAddress: 32)

    /// The peer policy: the root in ca.crt, the Fleet CA (the intermediate in node.crt) as
    /// issuer, and no serial the controller has revoked.
    func verifier() -> PeerVerifier {
        let logger = self.logger
        return PeerVerifier(roots: certificates.roots,
                            requirements: .controller(fleetCA: certificates.fleetCA, denied: certificates.denied),
                            onRejection: { logger.warning("control connection refused", metadata: ["reason": "\($0)"]) })
    }

    /// Serves until graceful shutdown (or cancellation): then the port closes, and calls in
    /// flight finish before this returns. WatchEvents calls end when the observer stops.
    public func run() async throws {
        let verifier = verifier()
        let listen = try config.listenHostPort()
        try? FileManager.default.removeItem(atPath: paths.controlSocket)
        let server = GRPCServer(
            transport: .http2NIOPosix(address: .unixDomainSocket(path: paths.controlSocket), transportSecurity: .plaintext),
            services: [service, NodeLifecycleService(certificates: certificates)])
        let (logger, paths) = (self.logger, self.paths)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            guard try await server.listeningAddress != nil else { return }
            chmod(paths.controlSocket, 0o600)
            let door: TLSFrontDoor
            do {
                door = try await NodeConfig.schema.listening("control.listen_addr", listen) {
                    try await TLSFrontDoor.start(
                        host: listen.host, port: listen.port,
                        tls: certificates.context,
                        verifier: verifier, upstreamSocketPath: paths.controlSocket, limits: Self.listenerLimits,
                        onRefusal: { logger.warning("control connection refused", metadata: ["reason": "\($0)"]) })
                }
            } catch {
                server.beginGracefulShutdown()
                throw error
            }
            logger.info("control port open", metadata: ["listen": "\(HostPort(host: listen.host, port: door.port))", "tls": "1.3, mTLS"])
            ready(door.port)
            try? await gracefulShutdown()
            try? await door.close()
            server.beginGracefulShutdown()
            logger.info("control port closed")
        }
    }
}
