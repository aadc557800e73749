import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOSSL
import PharosProto
import PharosSpec
import PharosTLS
import Synchronization
import X509

/// A gRPC connection to a relay's public port. Two trust modes:
/// - enrollment: no client certificate; inside the handshake, before any byte of the request
///   (the join token) is sent, the relay's chain must contain the root whose SHA-256 the join
///   link names and chain from an `O=PharosVPN Relay` server leaf up to it;
/// - device: the device certificate, and the relay must present an `O=PharosVPN Relay` leaf
///   issued by the fleet's Fleet CA and valid for the relay's server name.
enum RelayConnection {
    static let callTimeout = Duration.seconds(45)

    /// What the relay presented during a handshake: the chain as validated up to
    /// the link's root (leaf first; enrollment), or why it was refused (enrollment and device).
    final class CapturedChain: Sendable {
        let verified = Mutex<[Certificate]>([])
        let rejection = Mutex<String?>(nil)
    }

    static func target(_ address: String) throws(CaravelError) -> any ResolvableTarget {
        let relay: HostPort
        do { relay = try HostPort.parse(address) } catch { throw .invalidName("relay address: \(error)") }
        if relay.isIPv6Literal { return .ipv6(address: relay.host, port: relay.port) }
        if relay.isIPv4Literal { return .ipv4(address: relay.host, port: relay.port) }
        return .dns(host: relay.host, port: relay.port)
    }

    static var transportConfig: HTTP2ClientTransport.Posix.Config {
        var config = HTTP2ClientTransport.Posix.Config.defaults
        config.backoff = .init(initial: .milliseconds(200), max: .seconds(2), multiplier: 2, jitter: 0.1)
        config.connection.maxIdleTime = .seconds(30)
        return config
    }

    static func withEnrollmentClient<T: Sendable>(
        relay: String, rootFingerprint: String, captured: CapturedChain,
        _ body: (Pharos_Account_V1_AccountSync.Client<HTTP2ClientTransport.Posix>) async throws -> T
    ) async throws -> T {
        let security = HTTP2ClientTransport.Posix.TransportSecurity.tls {
            // Our callback decides; NIOSSL's own hostname check would run on top of it.
            $0.serverCertificateVerification = .noHostnameVerification
            $0.customVerificationCallback = { certificates, promise in
                promise.completeWithTask {
                    switch await pinnedChain(certificates, rootFingerprint: rootFingerprint) {
                    case .success(let chain):
                        captured.verified.withLock { $0 = chain }
                        return .certificateVerified(VerificationMetadata(nil))
                    case .failure(let refusal):
                        captured.rejection.withLock { $0 = refusal.description }
                        return .failed
                    }
                }
            }
        }
        return try await withGRPCClient(transport: try .http2NIOPosix(target: target(relay), transportSecurity: security,
                                                                      config: transportConfig)) { client in
            try await body(Pharos_Account_V1_AccountSync.Client(wrapping: client))
        }
    }

    /// The presented chain validated up to the root the join link pins: the root itself must be
    /// among the presented certificates (the device has nothing else yet) and hash to the link's
    /// `ca`; the leaf must be a relay's server certificate issued below it.
    struct ChainRefusal: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    static func pinnedChain(_ presented: [NIOSSLCertificate], rootFingerprint: String) async -> Result<[Certificate], ChainRefusal> {
        let parsed = presented.compactMap { try? Certificate(derEncoded: $0.toDERBytes()) }
        guard parsed.count == presented.count, !parsed.isEmpty else { return .failure(ChainRefusal("the relay's certificates do not parse")) }
        guard let root = parsed.first(where: { (try? Fingerprint.caRoot(der: $0.derBytes())) == rootFingerprint.lowercased() }),
              let roots = try? TrustRoots(certificates: [root]) else {
            return .failure(ChainRefusal("the relay did not present the root the join link names (ca=\(rootFingerprint.prefix(16))…)"))
        }
        let verifier = PeerVerifier(roots: roots, requirements: PeerRequirements(
            usage: .serverAuth, organizations: [PharosIdentity.Organization.relay]))
        switch await verifier.verify(parsed) {
        case .success(let chain): return .success(chain)
        case .failure(let rejection): return .failure(ChainRefusal("\(rejection)"))
        }
    }

    static func withDeviceClient<T: Sendable>(
        identity: DeviceIdentity, deniedRelays: Set<String> = [],
        _ body: (Pharos_Account_V1_AccountSync.Client<HTTP2ClientTransport.Posix>) async throws -> T
    ) async throws -> T {
        try await withDeviceConnection(identity: identity, deniedRelays: deniedRelays) {
            try await body(Pharos_Account_V1_AccountSync.Client(wrapping: $0))
        }
    }

    /// One connection to the relay with the device's certificate, for any service behind it.
    /// `deniedRelays`: serials of relay leaves this device refuses (the signed list it keeps).
    /// A relay certificate the device refuses ends the call before anything is sent, with a
    /// sentence saying why.
    static func withDeviceConnection<T: Sendable>(
        identity: DeviceIdentity, deniedRelays: Set<String> = [], _ body: (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> T
    ) async throws -> T {
        let fleetCA: [Certificate]
        let roots: TrustRoots
        do {
            fleetCA = try PEM.decodeAll(type: "CERTIFICATE", from: identity.fleetCA).map { try Certificate(derEncoded: $0) }
            guard !fleetCA.isEmpty else { throw CaravelError.untrusted("the device identity holds no Fleet CA; enroll again") }
            roots = try TrustRoots(certificates: [fleetCA[0]], source: "the device identity's fleet_ca")
        } catch let error as CaravelError {
            throw error
        } catch {
            throw CaravelError.untrusted("the device identity's fleet_ca does not parse: \(error); enroll again")
        }
        let captured = CapturedChain()
        let verifier = PeerVerifier(roots: roots, requirements: PeerRequirements(
            usage: .serverAuth, issuers: [fleetCA[0]], organizations: [PharosIdentity.Organization.relay],
            hostname: identity.relayServerName.isEmpty ? nil : identity.relayServerName,
            denied: deniedRelays.isEmpty ? nil : DeniedCertificates(deniedRelays)),
            onRejection: { rejection in captured.rejection.withLock { $0 = rejection.description } })
        let chain = PEM.decodeAll(type: "CERTIFICATE", from: identity.deviceCertificate).map { TLSConfig.CertificateSource.bytes($0, format: .der) }
        let security = HTTP2ClientTransport.Posix.TransportSecurity.mTLS(
            certificateChain: chain, privateKey: .bytes(Array(identity.deviceKey.utf8), format: .pem)) {
                // The verifier checks the relay's name itself (NIOSSL's check needs a DNS target).
                $0.serverCertificateVerification = .noHostnameVerification
                $0.customVerificationCallback = verifier.callback
            }
        do {
            return try await withGRPCClient(transport: try .http2NIOPosix(target: target(identity.relayAddress), transportSecurity: security,
                                                                          config: transportConfig)) { client in
                try await body(client)
            }
        } catch {
            guard let rejection = captured.rejection.withLock({ $0 }) else { throw error }
            throw CaravelError.untrusted("the relay \(identity.relayAddress) presented a certificate this device does not trust (\(rejection)); no request was sent to it. A revoked or foreign certificate means an interception or a relay the operator removed; an expired one, a relay that has not renewed")
        }
    }

    /// gRPC failures in the words of this client.
    static func translate(_ error: any Error, relay: String) -> CaravelError {
        if let error = error as? CaravelError { return error }
        guard let rpc = error as? RPCError else { return .io("\(error)") }
        switch rpc.code {
        case .unavailable, .deadlineExceeded:
            let cause = rpc.cause.map { " (\($0))" } ?? ""
            return .unreachable("the relay \(relay) cannot be reached or cannot reach the controller: \(rpc.message)\(cause); your stored profiles still work")
        case .unauthenticated, .permissionDenied:
            return .refused("the controller refused this device: \(rpc.message)")
        case .notFound:
            return .notFound(rpc.message)
        default:
            return .refused("\(rpc.code): \(rpc.message)")
        }
    }

    static var options: CallOptions {
        var options = CallOptions.defaults
        options.timeout = callTimeout
        return options
    }
}
