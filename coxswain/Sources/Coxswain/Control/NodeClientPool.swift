import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import PharosProto
import PharosSpec
import PharosTLS
import Synchronization
import X509

/// One long-lived mTLS gRPC connection per node, made with the controller's Fleet-CA client
/// leaf and trusting only our root. The node must present the leaf issued to *that* node:
/// Fleet CA, O=PharosVPN, CN=<node ID>, a SAN naming the address dialed, not revoked (a
/// removed node's leaf, or another node's, at the address fails the handshake).
///
/// The controller's own leaf is renewed while `cox serve` runs (`replaceIdentity`): each
/// node's connection is replaced, gracefully, the next time it is asked for.
public actor NodeClientPool {
    public typealias Client = Pharos_Node_V1_NodeControl.Client<HTTP2ClientTransport.Posix>
    public typealias Lifecycle = Pharos_Lifecycle_V1_NodeLifecycle.Client<HTTP2ClientTransport.Posix>

    private struct Entry {
        var address: String
        var identitySerial: String
        var grpc: GRPCClient<HTTP2ClientTransport.Posix>
        var runner: Task<Void, Never>
    }

    /// The controller leaf (and Fleet CA) new connections present.
    public private(set) var certificateChainPEM: String
    private var keyPEM: String
    /// The serial of the controller leaf new connections present.
    public private(set) var identitySerial: String
    private let rootPEM: String
    private let roots: TrustRoots
    private let fleetCA: Certificate
    /// Node leaves revoked before they expire; refreshed from the store by the renewer.
    public nonisolated let denied = DeniedCertificates()
    private var entries: [String: Entry] = [:]

    public init(pki: FleetPKI) throws {
        certificateChainPEM = pki.controllerCertificatePEM
        keyPEM = pki.controllerKeyPEM
        identitySerial = Self.serial(of: pki.controllerCertificatePEM)
        rootPEM = try pki.authority.root.certificate.pemString()
        roots = try TrustRoots(certificates: [pki.authority.root.certificate])
        fleetCA = pki.authority.fleet.certificate
    }

    /// The serial of the first certificate in a PEM chain ("" when none parses).
    public static func serial(of chainPEM: String) -> String {
        Certificate(firstIn: chainPEM)?.serialHex ?? ""
    }

    /// A renewed controller leaf: connections made from now on present it; each open one is
    /// replaced the next time its node is asked for (calls in flight on it finish first).
    public func replaceIdentity(certificateChainPEM: String, keyPEM: String) {
        self.certificateChainPEM = certificateChainPEM
        self.keyPEM = keyPEM
        identitySerial = Self.serial(of: certificateChainPEM)
    }

    /// The client of `nodeID` at `address`, connecting (or reconnecting after the address or
    /// the controller's leaf changed).
    public func client(for nodeID: String, address: String) throws -> Client {
        Client(wrapping: try connection(for: nodeID, address: address))
    }

    /// NodeLifecycle on the same connection (renewal, the controller deny list).
    public func lifecycle(for nodeID: String, address: String) throws -> Lifecycle {
        Lifecycle(wrapping: try connection(for: nodeID, address: address))
    }

    private func connection(for nodeID: String, address: String) throws -> GRPCClient<HTTP2ClientTransport.Posix> {
        if let entry = entries[nodeID], entry.address == address, entry.identitySerial == identitySerial { return entry.grpc }
        drop(nodeID)
        let target = try Self.target(address)
        let verifier = PeerVerifier(roots: roots, requirements: PeerRequirements(
            usage: .serverAuth, issuers: [fleetCA], organizations: [PharosIdentity.Organization.fleet], commonNames: [nodeID],
            hostname: try HostPort.parse(address).host, denied: denied))
        let chain = PEM.decodeAll(type: "CERTIFICATE", from: certificateChainPEM).map { TLSConfig.CertificateSource.bytes($0, format: .der) }
        let rootSource = TLSConfig.TrustRootsSource.certificates([.bytes(Array(rootPEM.utf8), format: .pem)])
        let security = HTTP2ClientTransport.Posix.TransportSecurity.mTLS(
            certificateChain: chain, privateKey: .bytes(Array(keyPEM.utf8), format: .pem)) {
                $0.trustRoots = rootSource
                // The verifier checks the name itself, with the node ID and the deny list.
                $0.serverCertificateVerification = .noHostnameVerification
                $0.customVerificationCallback = verifier.callback
            }
        let transport = try HTTP2ClientTransport.Posix(
            target: target, transportSecurity: security,
            config: .defaults { config in
                config.backoff = .init(initial: .milliseconds(200), max: .seconds(30), multiplier: 1.6, jitter: 0.2)
                config.connection.keepalive = .init(time: .seconds(20), timeout: .seconds(10), allowWithoutCalls: true)
                config.connection.maxIdleTime = nil
            })
        let grpc = GRPCClient(transport: transport)
        let runner = Task { do { try await grpc.runConnections() } catch {} }
        entries[nodeID] = Entry(address: address, identitySerial: identitySerial, grpc: grpc, runner: runner)
        return grpc
    }

    public func drop(_ nodeID: String) {
        guard let entry = entries.removeValue(forKey: nodeID) else { return }
        entry.grpc.beginGracefulShutdown()
    }

    public func shutdown() async {
        for (_, entry) in entries { entry.grpc.beginGracefulShutdown() }
        for (_, entry) in entries { await entry.runner.value }
        entries.removeAll()
    }

    static func target(_ address: String) throws -> any ResolvableTarget {
        let target: HostPort
        do { target = try HostPort.parse(address) } catch { throw FleetInputError.badAddress(field: "node address", reason: "\(error)", defaultPort: nil) }
        if target.isIPv4Literal { return ResolvableTargets.IPv4(addresses: [.init(host: target.host, port: target.port)]) }
        if target.isIPv6Literal { return ResolvableTargets.IPv6(addresses: [.init(host: target.host, port: target.port)]) }
        return ResolvableTargets.DNS(host: target.host, port: target.port)
    }
}
