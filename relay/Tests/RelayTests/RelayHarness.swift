import Foundation
import EchoFixture
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import PharosSpec
import PharosTLS
import PharosTestSupport
@testable import Relay

/// A relay (the real one) in front of a real grpc-swift service on a Unix socket, over
/// either transport. Clients connect to `clientPort` with real TLS.
final class RelayHarness: @unchecked Sendable {
    enum Transport: String, CaseIterable, Sendable { case embedded, remote }

    static let logger: Logger = {
        var logger = Logger(label: "relay.test")
        logger.logLevel = ProcessInfo.processInfo.environment["RELAY_TEST_LOG"] == nil ? .critical : .debug
        return logger
    }()

    let pki: TestPKI
    let dir: String
    let socketPath: String
    let relayLeaf: TestPKI.Leaf
    let deviceLeaf: TestPKI.Leaf
    let controllerLeaf: TestPKI.Leaf
    let upstream: Upstream
    let denyList = DeviceDenyList()
    let clientListener: ClientListener
    let tunnelListener: TunnelListener?
    private var service: GRPCServer<HTTP2ServerTransport.Posix>?
    private var serviceTask: Task<Void, any Error>?
    private var dialerTask: Task<Void, Never>?
    var dialer: TunnelDialer?

    var clientPort: Int { clientListener.port }

    init(transport: Transport, maxMessageBytes: Int = 16 << 20, limits base: HTTP2Limits = HTTP2Limits()) async throws {
        pki = try TestPKI()
        dir = "/tmp/relay-test-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        socketPath = "\(dir)/coxswain.sock"
        relayLeaf = try pki.leaf(commonName: PharosIdentity.Organization.relay, organization: PharosIdentity.Organization.relay,
                                 usage: [.serverAuth, .clientAuth])
        deviceLeaf = try pki.leaf(commonName: "dev_test", organization: PharosIdentity.Organization.device, usage: [.clientAuth],
                                  issuer: .device)
        controllerLeaf = try pki.leaf(commonName: "coxswain-controller", organization: PharosIdentity.Organization.fleet,
                                      usage: [.clientAuth])
        var limits = base
        limits.maxMessageBytes = maxMessageBytes
        upstream = Upstream(mode: transport == .embedded ? .socket(path: socketPath) : .tunnel, settings: limits, logger: Self.logger)
        let identity = try relayLeaf.identity()
        clientListener = try await ClientListener.start(host: "127.0.0.1", port: 0, identity: identity, roots: try pki.roots(),
                                                        deviceCA: pki.device, upstream: upstream, limits: limits, denyList: denyList,
                                                        logger: Self.logger)
        tunnelListener = transport == .remote
            ? try await TunnelListener.start(host: "127.0.0.1", port: 0, identity: identity, roots: try pki.roots(), fleetCA: pki.fleet,
                                             upstream: upstream, limits: limits, logger: Self.logger)
            : nil
        try await startService()
        if transport == .remote { try await startDialer(with: controllerLeaf) }
    }

    func startService() async throws {
        // As coxswain's relay tier serves it: one tunnel carries every client's calls.
        let server = GRPCServer(transport: HTTP2ServerTransport.Posix(address: .unixDomainSocket(path: socketPath),
                                                                      transportSecurity: .plaintext,
                                                                      config: .defaults { $0.http2.maxConcurrentStreams = 20_000 }),
                                services: [EchoService()])
        service = server
        serviceTask = Task { try await server.serve() }
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: socketPath) { try await Task.sleep(for: .milliseconds(20)) }
    }

    func stopService() async {
        service?.beginGracefulShutdown()
        serviceTask?.cancel()
        _ = await serviceTask?.result
        service = nil
        try? FileManager.default.removeItem(atPath: socketPath)
    }

    /// Dials the tunnel as the controller would (or as an impostor, with another leaf).
    func startDialer(with leaf: TestPKI.Leaf, waitForTunnel: Bool = true) async throws {
        let dialer = TunnelDialer(host: "127.0.0.1", port: tunnelListener!.port, serverName: "localhost",
                                  identity: try leaf.identity(), roots: try pki.roots(), socketPath: socketPath, logger: Self.logger)
        self.dialer = dialer
        dialerTask = Task { await dialer.run() }
        guard waitForTunnel else { return }
        for _ in 0..<200 where !upstream.isConnected { try await Task.sleep(for: .milliseconds(20)) }
        guard upstream.isConnected else { throw UpstreamUnavailable(reason: "the tunnel did not come up") }
    }

    func stopDialer() async {
        dialerTask?.cancel()
        await dialerTask?.value
    }

    func stop() async {
        await stopDialer()
        await stopService()
        try? await clientListener.close()
        try? await tunnelListener?.close()
        try? FileManager.default.removeItem(atPath: dir)
    }

    @discardableResult
    /// A gRPC client to the relay's public port, with `leaf` as its client certificate (or none).
    func withClient<T: Sendable>(leaf: TestPKI.Leaf?, roots: TrustRoots? = nil,
                                 _ body: (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> T) async throws -> T {
        try await withGRPCClient(transport: try transport(leaf: leaf)) { client in try await body(client) }
    }

    /// A client whose connection the caller runs (`runConnections`) and ends: for tests that
    /// need many connections at once.
    func makeClient(leaf: TestPKI.Leaf?) throws -> GRPCClient<HTTP2ClientTransport.Posix> {
        GRPCClient(transport: try transport(leaf: leaf))
    }

    func transport(leaf: TestPKI.Leaf?) throws -> HTTP2ClientTransport.Posix {
        let rootPEM = try pki.rootPEM
        let trust = TLSConfig.TrustRootsSource.certificates([.bytes(Array(rootPEM.utf8), format: .pem)])
        let security: HTTP2ClientTransport.Posix.TransportSecurity
        if let leaf {
            let chain = PEM.decodeAll(type: "CERTIFICATE", from: leaf.certificatePEM).map { TLSConfig.CertificateSource.bytes($0, format: .der) }
            security = .mTLS(certificateChain: chain, privateKey: .bytes(Array(leaf.keyPEM.utf8), format: .pem)) {
                $0.trustRoots = trust
                $0.serverCertificateVerification = .fullVerification
            }
        } else {
            security = .tls { $0.trustRoots = trust }
        }
        var config = HTTP2ClientTransport.Posix.Config.defaults
        config.backoff = .init(initial: .milliseconds(100), max: .milliseconds(200), multiplier: 1, jitter: 0)
        return try .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: clientPort), transportSecurity: security, config: config)
    }
}

extension GRPCClient {
    func echo(_ bytes: [UInt8], method: MethodDescriptor = Echo.unary, metadata: Metadata = [:],
              timeout: Duration = .seconds(10)) async throws -> (message: [UInt8], seen: String) {
        var options = CallOptions.defaults
        options.timeout = timeout
        return try await unary(request: ClientRequest(message: bytes, metadata: metadata), descriptor: method,
                               serializer: RawSerializer(), deserializer: RawDeserializer(), options: options) { response in
            let seen = response.metadata[stringValues: "seen"].first(where: { _ in true }) ?? ""
            return (try response.message, seen)
        }
    }
}
