import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import PharosSpec
import PharosTLS

/// The control port: mTLS 1.3 at `TLSFrontDoor`, which accepts only the controller's leaf
/// (`PeerRequirements.controller`: Fleet CA under the root in `ca.crt`, ClientAuth,
/// O=PharosVPN, CN=coxswain-controller), then gRPC over a 0600 Unix socket in the config
/// directory. Only the controller ever connects, so the port holds few connections.
public struct ControlServer: Sendable {
    public let paths: NodePaths
    public let config: NodeConfig
    public let logger: Logger

    public init(paths: NodePaths, config: NodeConfig, logger: Logger) {
        self.paths = paths
        self.config = config
        self.logger = logger
    }

    /// The connection limits of the control port: one controller (a few connections while it
    /// reconnects or runs CLI commands beside `cox serve`).
    static let listenerLimits = ListenerLimits(handshakeTimeout: .seconds(10), maxConnections: 64, maxConnectionsPerAddress: 32)

    /// The peer policy: the root in ca.crt, and the Fleet CA (the intermediate in node.crt) as issuer.
    func verifier(identity: TLSIdentity, roots: TrustRoots) throws -> PeerVerifier {
        let fleetCA = Array(identity.certificates.dropFirst())
        guard !fleetCA.isEmpty else {
            throw TLSSetupError.invalidCertificate(source: paths.certificate, reason: "must hold the node leaf followed by the Fleet CA")
        }
        let logger = self.logger
        return PeerVerifier(roots: roots, requirements: .controller(fleetCA: fleetCA),
                            onRejection: { logger.warning("control connection refused", metadata: ["reason": "\($0)"]) })
    }

    /// Serves until cancelled. `ready` is called with the bound TCP port once both listeners are up.
    public func serve(service: NodeControlService, ready: @Sendable (Int) -> Void = { _ in }) async throws {
        let identity = try TLSIdentity(certificatePath: paths.certificate, keyPath: paths.key)
        let roots = try TrustRoots(path: paths.caCertificate)
        let verifier = try verifier(identity: identity, roots: roots)
        try? FileManager.default.removeItem(atPath: paths.controlSocket)
        let server = GRPCServer(
            transport: .http2NIOPosix(address: .unixDomainSocket(path: paths.controlSocket), transportSecurity: .plaintext),
            services: [service])
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            guard try await server.listeningAddress != nil else { return }
            chmod(paths.controlSocket, 0o600)
            let listen = try config.listenHostPort()
            let door = try await TLSFrontDoor.start(
                host: listen.host, port: listen.port,
                tls: PharosTLSConfiguration.server(identity: identity, roots: roots, applicationProtocols: ["grpc-exp", "h2"]),
                verifier: verifier, upstreamSocketPath: paths.controlSocket, limits: Self.listenerLimits,
                onRefusal: { logger.warning("control connection refused", metadata: ["reason": "\($0)"]) })
            logger.info("control port open", metadata: ["listen": "\(HostPort(host: listen.host, port: door.port))", "tls": "1.3, mTLS"])
            ready(door.port)
            // Serve until the surrounding task is cancelled (the sleep then throws).
            try? await Task.sleep(for: .seconds(Int64.max / 2))
            try? await door.close()
            server.beginGracefulShutdown()
        }
    }
}
