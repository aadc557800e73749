import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import NIOSSL
import PharosConfig
import PharosSpec
import PharosTLS
import ServiceLifecycle
import X509

/// `siem.listen`: the SIEM stream on its own TCP port, TLS 1.3 only. The port presents a
/// leaf the Fleet CA issues to a key that lives in memory only (SANs: `siem.server_names`
/// and the listen address), renewed in place every `renewEvery`; a consumer trusts the
/// fleet's root (`cox pki root`) and authenticates with a monitor-scope API token. The
/// verified TLS is spliced to a gRPC server on `monitor.sock` (0600) in the state directory,
/// as the node's control port is.
public struct MonitorListener: Service {
    let pki: FleetPKI
    let config: CoxConfig
    let socketPath: String
    let service: MonitorStreamService
    let logger: Logger
    let ready: @Sendable (Int) -> Void

    public static let leafValidity: TimeInterval = 30 * 86400
    public static let renewEvery: Duration = .seconds(10 * 86400)
    static let limits = ListenerLimits(handshakeTimeout: .seconds(10), maxConnections: 256, maxConnectionsPerAddress: 32)

    public init(pki: FleetPKI, config: CoxConfig, socketPath: String, service: MonitorStreamService, logger: Logger,
                ready: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.pki = pki
        self.config = config
        self.socketPath = socketPath
        self.service = service
        self.logger = logger
        self.ready = ready
    }

    /// The names the leaf is issued for: `siem.server_names`, the listen host when it is one
    /// address (not a wildcard), and `localhost` with a loopback one; `localhost` and
    /// 127.0.0.1 when that leaves none.
    static func serverNames(_ config: CoxConfig) throws -> [String] {
        var names = config.siemServerNames.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let host = try HostPort.listen(config.siemListen).host
        if !["", "0.0.0.0", "::"].contains(host) { names.append(host) }
        if host.hasPrefix("127.") || host == "::1" { names.append("localhost") }
        if names.isEmpty { names = ["localhost", "127.0.0.1"] }
        return names.reduce(into: []) { if !$0.contains($1) { $0.append($1) } }
    }

    /// A fresh key and leaf: leaf, Fleet CA and root.
    func identity(names: [String]) throws -> TLSIdentity {
        let authority = pki.authority
        let key = P256.Signing.PrivateKey()
        let leaf = try authority.issue(publicKey: Certificate.PublicKey(key.publicKey), profile: .monitor(names: names),
                                       validity: Self.leafValidity)
        return try TLSIdentity(certificatePEM: try leaf.pemString() + authority.fleet.certificate.pemString() + authority.root.certificate.pemString(),
                               keyPEM: key.pemRepresentation, source: "SIEM stream")
    }

    func context(names: [String], roots: TrustRoots) throws -> NIOSSLContext {
        try NIOSSLContext(configuration: PharosTLSConfiguration.server(identity: try identity(names: names), roots: roots,
                                                                        clientCertificates: .optional,
                                                                        applicationProtocols: ["h2"]))
    }

    public func run() async throws {
        let listen = try HostPort.listen(config.siemListen)
        let names = try Self.serverNames(config)
        let roots = try TrustRoots(certificates: [pki.authority.root.certificate])
        let tls = SwappableTLSContext(try context(names: names, roots: roots))
        // The token is what authenticates a consumer; a client certificate, if one is sent
        // anyway, must at least be a client leaf of this fleet.
        let logger = self.logger
        let verifier = PeerVerifier(roots: roots, requirements: PeerRequirements(usage: .clientAuth,
                                                                                  issuers: [pki.authority.fleet.certificate]),
                                    onRejection: { logger.warning("SIEM connection refused", metadata: ["reason": "\($0)"]) })
        let socketPath = self.socketPath
        try? FileManager.default.removeItem(atPath: socketPath)
        let server = GRPCServer(transport: .http2NIOPosix(address: .unixDomainSocket(path: socketPath), transportSecurity: .plaintext),
                                services: [service])
        var stopping = false
        do {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await server.serve() }
                guard try await server.listeningAddress != nil else { return }
                chmod(socketPath, 0o600)
                let door: TLSFrontDoor
                do {
                    door = try await CoxConfig.schema.listening("siem.listen", listen) {
                        try await TLSFrontDoor.start(host: listen.host, port: listen.port, tls: tls, verifier: verifier,
                                                     upstreamSocketPath: socketPath, limits: Self.limits,
                                                     onRefusal: { logger.warning("SIEM connection refused", metadata: ["reason": "\($0)"]) })
                    }
                } catch {
                    server.beginGracefulShutdown()
                    throw error
                }
                logger.info("SIEM stream listening", metadata: ["listen": "\(HostPort(host: listen.host, port: door.port))",
                                                                "names": "\(names.joined(separator: ","))", "tls": "1.3"])
                ready(door.port)
                group.addTask {
                    while !Task.isCancelled {
                        try await Task.sleep(for: Self.renewEvery)
                        do {
                            tls.replace(with: try context(names: names, roots: roots))
                            logger.info("SIEM stream leaf renewed")
                        } catch {
                            logger.error("SIEM stream leaf renewal failed", metadata: ["error": "\(error)"])
                        }
                    }
                }
                try? await gracefulShutdown()
                try? await door.close()
                // Streams never end on their own: cancelling the server ends them.
                stopping = true
                group.cancelAll()
            }
        } catch is CancellationError where stopping {
            // The streams ended, as shutdown asked.
        }
    }
}
