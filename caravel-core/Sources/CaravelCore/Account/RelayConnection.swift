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
/// - enrollment: no client certificate, the server chain is captured rather than verified
///   (the device does not know the fleet yet) and checked after the controller answered;
/// - device: the device certificate, and the relay must present an `O=PharosVPN Relay` leaf
///   issued by the fleet's Fleet CA and valid for the relay's server name.
enum RelayConnection {
    static let callTimeout = Duration.seconds(45)

    /// What the relay presented during an enrollment handshake.
    final class CapturedChain: Sendable {
        let certificates = Mutex<[Certificate]>([])
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
        relay: String, captured: CapturedChain,
        _ body: (Pharos_Account_V1_AccountSync.Client<HTTP2ClientTransport.Posix>) async throws -> T
    ) async throws -> T {
        let security = HTTP2ClientTransport.Posix.TransportSecurity.tls {
            // Our callback decides; NIOSSL's own hostname check would run on top of it.
            $0.serverCertificateVerification = .noHostnameVerification
            $0.customVerificationCallback = { certificates, promise in
                let parsed = certificates.compactMap { try? Certificate(derEncoded: $0.toDERBytes()) }
                captured.certificates.withLock { $0 = parsed }
                // Checked after the controller answered, against the Fleet CA it returned.
                promise.succeed(parsed.isEmpty ? .failed : .certificateVerified(VerificationMetadata(nil)))
            }
        }
        return try await withGRPCClient(transport: try .http2NIOPosix(target: target(relay), transportSecurity: security,
                                                                      config: transportConfig)) { client in
            try await body(Pharos_Account_V1_AccountSync.Client(wrapping: client))
        }
    }

    static func withDeviceClient<T: Sendable>(
        identity: DeviceIdentity,
        _ body: (Pharos_Account_V1_AccountSync.Client<HTTP2ClientTransport.Posix>) async throws -> T
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
        let verifier = PeerVerifier(roots: roots, requirements: PeerRequirements(
            usage: .serverAuth, issuers: [fleetCA[0]], organizations: [PharosIdentity.Organization.relay],
            hostname: identity.relayServerName.isEmpty ? nil : identity.relayServerName))
        let chain = PEM.decodeAll(type: "CERTIFICATE", from: identity.deviceCertificate).map { TLSConfig.CertificateSource.bytes($0, format: .der) }
        let security = HTTP2ClientTransport.Posix.TransportSecurity.mTLS(
            certificateChain: chain, privateKey: .bytes(Array(identity.deviceKey.utf8), format: .pem)) {
                // The verifier checks the relay's name itself (NIOSSL's check needs a DNS target).
                $0.serverCertificateVerification = .noHostnameVerification
                $0.customVerificationCallback = verifier.callback
            }
        return try await withGRPCClient(transport: try .http2NIOPosix(target: target(identity.relayAddress), transportSecurity: security,
                                                                      config: transportConfig)) { client in
            try await body(Pharos_Account_V1_AccountSync.Client(wrapping: client))
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
