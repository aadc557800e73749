import Logging
import NIOCore
import NIOSSL
import PharosSpec
import PharosTLS
import Synchronization
import X509

/// The controller's side of a remote relay: dials the relay's tunnel port over mTLS 1.3 with
/// the controller's Fleet-CA client leaf, checks the relay's certificate (our root, issued by
/// the Fleet CA, `O=PharosVPN Relay`, valid for `serverName`), and splices the tunnel to the controller's private gRPC socket. The relay
/// speaks HTTP/2 as the client over it. Reconnects with back-off 1 s doubling to 60 s (reset
/// after a connection that lived 30 s); keepalive PINGs come from the relay every 20 s.
public final class TunnelDialer: Sendable {
    public let host: String
    public let port: Int
    public let serverName: String
    let tls: TLSConfiguration
    let verifier: PeerVerifier
    let socketPath: String
    let logger: Logger
    private let connected = Mutex(false)

    /// `denied`: serials of relay leaves revoked before they expire (a removed relay's),
    /// refused even when they name `serverName`. `presented` gets the relay's leaf at every
    /// handshake that accepted it (a renewed leaf shows up at the first dial after it).
    public init(host: String, port: Int, serverName: String, identity: TLSIdentity, roots: TrustRoots,
                socketPath: String, logger: Logger, denied: DeniedCertificates? = nil,
                presented: @escaping @Sendable (Certificate) -> Void = { _ in }) {
        self.host = host
        self.port = port
        self.serverName = serverName
        self.tls = PharosTLSConfiguration.client(identity: identity, roots: roots, minimumVersion: .tlsv13)
        let fleetCA = Array(identity.certificates.dropFirst().prefix(1))
        self.verifier = PeerVerifier(roots: roots, requirements: PeerRequirements(
            usage: .serverAuth, issuers: fleetCA.isEmpty ? nil : fleetCA,
            organizations: [PharosIdentity.Organization.relay], hostname: serverName, denied: denied), onRejection: { rejection in
                logger.warning("relay certificate refused", metadata: ["relay": "\(host):\(port)", "reason": "\(rejection)"])
            }, onAcceptance: { chain in if let leaf = chain.first { presented(leaf) } })
        self.socketPath = socketPath
        self.logger = logger
    }

    public var isConnected: Bool { connected.withLock { $0 } }

    /// Keeps one tunnel up until cancelled.
    public func run() async {
        var delay = Duration.seconds(1)
        while !Task.isCancelled {
            let opened = ContinuousClock.now
            do {
                let channel = try await TLSSpliceDialer.dial(host: host, port: port, tls: tls, serverHostname: serverName,
                                                             verifier: verifier, upstreamSocketPath: socketPath)
                connected.withLock { $0 = true }
                logger.info("relay tunnel dialed", metadata: ["relay": "\(host):\(port)"])
                await withTaskCancellationHandler {
                    try? await channel.closeFuture.get()
                } onCancel: {
                    channel.close(promise: nil)
                }
                connected.withLock { $0 = false }
                logger.warning("relay tunnel closed", metadata: ["relay": "\(host):\(port)"])
            } catch {
                logger.warning("relay tunnel dial failed", metadata: ["relay": "\(host):\(port)", "error": "\(error)"])
            }
            if ContinuousClock.now - opened > .seconds(30) { delay = .seconds(1) }
            try? await Task.sleep(for: delay)
            delay = min(.seconds(60), delay * 2)
        }
    }
}
