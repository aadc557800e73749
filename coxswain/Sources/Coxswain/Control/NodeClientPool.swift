import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import PharosProto
import PharosSpec

/// One long-lived mTLS gRPC connection per node, made with the controller's Fleet-CA client
/// leaf and trusting only our root; the node's certificate must name the address dialed.
public actor NodeClientPool {
    public typealias Client = Pharos_Node_V1_NodeControl.Client<HTTP2ClientTransport.Posix>

    private struct Entry {
        var address: String
        var grpc: GRPCClient<HTTP2ClientTransport.Posix>
        var runner: Task<Void, Never>
    }

    private let certificateChainPEM: String
    private let keyPEM: String
    private let rootPEM: String
    private var entries: [String: Entry] = [:]

    public init(pki: FleetPKI) throws {
        self.certificateChainPEM = pki.controllerCertificatePEM
        self.keyPEM = pki.controllerKeyPEM
        self.rootPEM = try pki.authority.root.certificate.pemString()
    }

    public init(certificateChainPEM: String, keyPEM: String, rootPEM: String) {
        self.certificateChainPEM = certificateChainPEM
        self.keyPEM = keyPEM
        self.rootPEM = rootPEM
    }

    /// The client of `nodeID` at `address`, connecting (or reconnecting after the address changed).
    public func client(for nodeID: String, address: String) throws -> Client {
        if let entry = entries[nodeID], entry.address == address { return Client(wrapping: entry.grpc) }
        drop(nodeID)
        let chain = PEM.decodeAll(type: "CERTIFICATE", from: certificateChainPEM).map { TLSConfig.CertificateSource.bytes($0, format: .der) }
        let roots = TLSConfig.TrustRootsSource.certificates([.bytes(Array(rootPEM.utf8), format: .pem)])
        let security = HTTP2ClientTransport.Posix.TransportSecurity.mTLS(
            certificateChain: chain, privateKey: .bytes(Array(keyPEM.utf8), format: .pem)) {
                $0.trustRoots = roots
                $0.serverCertificateVerification = .fullVerification
            }
        let transport = try HTTP2ClientTransport.Posix(
            target: try Self.target(address), transportSecurity: security,
            config: .defaults { config in
                config.backoff = .init(initial: .milliseconds(200), max: .seconds(30), multiplier: 1.6, jitter: 0.2)
                config.connection.keepalive = .init(time: .seconds(20), timeout: .seconds(10), allowWithoutCalls: true)
                config.connection.maxIdleTime = nil
            })
        let grpc = GRPCClient(transport: transport)
        let runner = Task { do { try await grpc.runConnections() } catch {} }
        entries[nodeID] = Entry(address: address, grpc: grpc, runner: runner)
        return Client(wrapping: grpc)
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
