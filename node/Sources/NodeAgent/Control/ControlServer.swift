import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import PharosSpec
import PharosTLS

/// The control port: mTLS 1.3 at `TLSFrontDoor`, which accepts only a ClientAuth leaf
/// issued by the Fleet CA under the root in `ca.crt`, then gRPC over a 0600 Unix
/// socket in the config directory.
public struct ControlServer: Sendable {
    public let paths: NodePaths
    public let config: NodeConfig
    public let logger: Logger

    public init(paths: NodePaths, config: NodeConfig, logger: Logger) {
        self.paths = paths
        self.config = config
        self.logger = logger
    }

    /// The peer policy: the root in ca.crt, and the Fleet CA (the intermediate in node.crt) as issuer.
    func verifier(identity: TLSIdentity, roots: TrustRoots) throws -> PeerVerifier {
        let fleetCA = Array(identity.certificates.dropFirst())
        guard !fleetCA.isEmpty else {
            throw TLSSetupError.invalidCertificate(source: paths.certificate, reason: "must hold the node leaf followed by the Fleet CA")
        }
        let logger = self.logger
        return PeerVerifier(roots: roots, requirements: PeerRequirements(usage: .clientAuth, issuers: fleetCA),
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
            let (host, port) = try config.listenHostPort()
            let door = try await TLSFrontDoor.start(
                host: host, port: port,
                tls: PharosTLSConfiguration.server(identity: identity, roots: roots, applicationProtocols: ["grpc-exp", "h2"]),
                verifier: verifier, upstreamSocketPath: paths.controlSocket)
            logger.info("control port open", metadata: ["listen": "\(host):\(door.port)", "tls": "1.3, mTLS"])
            ready(door.port)
            // Serve until the surrounding task is cancelled (the sleep then throws).
            try? await Task.sleep(for: .seconds(Int64.max / 2))
            try? await door.close()
            server.beginGracefulShutdown()
        }
    }
}
