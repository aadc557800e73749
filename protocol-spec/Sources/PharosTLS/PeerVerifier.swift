import Foundation
import NIOCore
import NIOSSL
import PharosSpec
import SwiftASN1
import Synchronization
import X509

/// What a peer's certificate must be, beyond chaining to our roots and being in date.
public struct PeerRequirements: Sendable {
    /// The EKU the leaf must carry (`.clientAuth` for callers, `.serverAuth` for servers).
    public var usage: ExtendedKeyUsage.Usage
    /// When set, the leaf must be issued directly by one of these CAs (e.g. only the Fleet CA).
    public var issuers: [Certificate]?
    /// When set, the leaf's subject must carry one of these `O=` values.
    public var organizations: Set<String>?
    /// When set, the leaf's subject must carry one of these `CN=` values.
    public var commonNames: Set<String>?
    /// When set, the leaf's subject alternative names must include this DNS name or IP
    /// address (for a client that replaces NIOSSL's own hostname check with this verifier).
    public var hostname: String?
    /// When set, a leaf whose serial is in it is refused (revoked before it expired).
    public var denied: DeniedCertificates?

    public init(usage: ExtendedKeyUsage.Usage, issuers: [Certificate]? = nil, organizations: Set<String>? = nil,
                commonNames: Set<String>? = nil, hostname: String? = nil, denied: DeniedCertificates? = nil) {
        self.usage = usage
        self.issuers = issuers
        self.organizations = organizations
        self.commonNames = commonNames
        self.hostname = hostname
        self.denied = denied
    }

    /// The controller and nothing else: a ClientAuth leaf issued by the Fleet CA with
    /// O=PharosVPN and CN=coxswain-controller. Every other Fleet-CA leaf with ClientAuth (a
    /// relay's, whose EKU is dual) is refused, so a captured relay cannot drive nodes.
    /// `denied` holds the serials of controller leaves revoked before they expired.
    public static func controller(fleetCA: [Certificate], denied: DeniedCertificates? = nil) -> PeerRequirements {
        PeerRequirements(usage: .clientAuth, issuers: fleetCA, organizations: [PharosIdentity.Organization.fleet],
                         commonNames: [PharosIdentity.CommonName.controller], denied: denied)
    }
}

/// A peer certificate that was refused, and why, for the log.
public struct PeerRejection: Error, Sendable, CustomStringConvertible {
    public var subject: String
    public var reasons: [String]
    public var description: String {
        "refused peer certificate \(subject): " + (reasons.isEmpty ? "no chain to a trusted root" : reasons.joined(separator: "; "))
    }
}

/// Verifies peer chains with swift-certificates against our roots only (RFC 5280:
/// signatures, validity dates, basic constraints, key usage) plus `PeerRequirements`.
/// Its `callback` plugs into NIOSSL handlers and grpc-swift's TLS config, so the
/// verified chain is then available from the channel.
public struct PeerVerifier: Sendable {
    public let roots: TrustRoots
    public let requirements: PeerRequirements
    /// CAs that may complete a chain the peer presents without them (devices send only
    /// their leaf; the relay knows the Device CA).
    public let intermediates: [Certificate]
    let onRejection: @Sendable (PeerRejection) -> Void
    let onAcceptance: @Sendable ([Certificate]) -> Void

    /// `onAcceptance` gets each chain `callback` accepted, leaf first (the controller records
    /// which leaf a relay presents).
    public init(roots: TrustRoots, requirements: PeerRequirements, intermediates: [Certificate] = [],
                onRejection: @escaping @Sendable (PeerRejection) -> Void = { _ in },
                onAcceptance: @escaping @Sendable ([Certificate]) -> Void = { _ in }) {
        self.roots = roots
        self.requirements = requirements
        self.intermediates = intermediates
        self.onRejection = onRejection
        self.onAcceptance = onAcceptance
    }

    /// The validated chain, leaf first and root last.
    public func verify(_ presented: [Certificate]) async -> Result<[Certificate], PeerRejection> {
        guard let leaf = presented.first else {
            return .failure(PeerRejection(subject: "(none)", reasons: ["no certificate presented"]))
        }
        var verifier = Verifier(rootCertificates: CertificateStore(roots.certificates)) {
            RFC5280Policy()
            PharosPeerPolicy(requirements: requirements)
        }
        switch await verifier.validate(leaf: leaf, intermediates: CertificateStore(Array(presented.dropFirst()) + intermediates)) {
        case .validCertificate(let chain):
            return .success(Array(chain))
        case .couldNotValidate(let failures):
            var reasons: [String] = []
            for failure in failures where !reasons.contains(failure.policyFailureReason.description) {
                reasons.append(failure.policyFailureReason.description)
            }
            if reasons.isEmpty, leaf.notValidAfter < Date() { reasons.append("expired at \(leaf.notValidAfter)") }
            return .failure(PeerRejection(subject: "\(leaf.subject)", reasons: reasons))
        }
    }

    /// For `NIOSSLServerHandler`/`NIOSSLClientHandler(customVerificationCallbackWithMetadata:)`
    /// and grpc-swift's `customVerificationCallback`.
    public var callback: @Sendable ([NIOSSLCertificate], EventLoopPromise<NIOSSLVerificationResultWithMetadata>) -> Void {
        let verifier = self
        return { nioCertificates, promise in
            promise.completeWithTask {
                let presented: [Certificate]
                do {
                    presented = try nioCertificates.map { try Certificate(derEncoded: $0.toDERBytes()) }
                } catch {
                    verifier.onRejection(PeerRejection(subject: "(unparseable)", reasons: ["certificate does not parse: \(error)"]))
                    return .failed
                }
                switch await verifier.verify(presented) {
                case .success(let chain):
                    verifier.onAcceptance(chain)
                    let nioChain = try chain.map { try NIOSSLCertificate(bytes: $0.derBytes(), format: .der) }
                    return .certificateVerified(VerificationMetadata(ValidatedCertificateChain(nioChain)))
                case .failure(let rejection):
                    verifier.onRejection(rejection)
                    return .failed
                }
            }
        }
    }
}

struct PharosPeerPolicy: VerifierPolicy {
    /// DNS names (lowercased) and IP addresses (textual) among the leaf's SANs.
    static func names(of leaf: Certificate) -> Set<String> {
        guard let sans = try? leaf.extensions.subjectAlternativeNames else { return [] }
        var out = Set<String>()
        for name in sans {
            switch name {
            case .dnsName(let dns): out.insert(dns.lowercased())
            case .ipAddress(let octets):
                let bytes = Array(octets.bytes)
                var buffer = [CChar](repeating: 0, count: 64)
                let family = bytes.count == 4 ? AF_INET : AF_INET6
                guard bytes.count == 4 || bytes.count == 16,
                      bytes.withUnsafeBytes({ inet_ntop(family, $0.baseAddress, &buffer, 64) }) != nil else { continue }
                out.insert(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            default: continue
            }
        }
        return out
    }

    let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = []
    let requirements: PeerRequirements

    func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) -> PolicyEvaluationResult {
        let leaf = chain.leaf
        guard let eku = try? leaf.extensions.extendedKeyUsage, eku.contains(requirements.usage) else {
            return .failsToMeetPolicy(reason: "leaf lacks the \(requirements.usage) extended key usage")
        }
        if let issuers = requirements.issuers {
            guard chain.count >= 2, issuers.contains(chain[1]) else {
                return .failsToMeetPolicy(reason: "leaf was not issued by an accepted CA (\(issuers.map { "\($0.subject)" }.joined(separator: ", ")))")
            }
        }
        if let organizations = requirements.organizations {
            guard leaf.organizations.contains(where: organizations.contains) else {
                return .failsToMeetPolicy(reason: "leaf O=\(leaf.organizations) is not one of \(organizations.sorted())")
            }
        }
        if let commonNames = requirements.commonNames {
            guard leaf.commonNames.contains(where: commonNames.contains) else {
                return .failsToMeetPolicy(reason: "leaf CN=\(leaf.commonNames) is not one of \(commonNames.sorted())")
            }
        }
        if let hostname = requirements.hostname, !Self.names(of: leaf).contains(hostname.lowercased()) {
            return .failsToMeetPolicy(reason: "leaf is not valid for \(hostname) (its names: \(Self.names(of: leaf).sorted().joined(separator: ", ")))")
        }
        if let denied = requirements.denied, denied.contains(leaf.serialHex) {
            return .failsToMeetPolicy(reason: "leaf serial \(leaf.serialHex) is revoked")
        }
        return .meetsPolicy
    }
}

/// Serials (lowercase hex) of leaves revoked before they expired, consulted at every
/// handshake; replaced as a whole when the controller sends a new list. Connections already
/// open on a leaf are watched (`watch`): the list that names their leaf closes them, so a
/// revoked leaf keeps no connection it opened before (a leaked controller leaf's hold on a
/// node's control port or a relay's tunnel port ends when the list arrives).
public final class DeniedCertificates: Sendable {
    private struct State {
        var serials: Set<String>
        var watched: [UInt64: (serial: String, close: @Sendable () -> Void)] = [:]
        var nextWatch: UInt64 = 0
    }

    private let state: Mutex<State>

    public init(_ serials: Set<String> = []) {
        state = Mutex(State(serials: Set(serials.map { $0.lowercased() })))
    }

    public func contains(_ serial: String) -> Bool { state.withLock { $0.serials.contains(serial.lowercased()) } }

    /// The new list; every watched connection whose leaf it names is closed (once).
    public func replace(with serials: Set<String>) {
        let normalized = Set(serials.map { $0.lowercased() })
        let revoked = state.withLock { state in
            state.serials = normalized
            let hit = state.watched.filter { normalized.contains($0.value.serial) }
            for id in hit.keys { state.watched[id] = nil }
            return hit.values.map(\.close)
        }
        for close in revoked { close() }
    }

    public var all: Set<String> { state.withLock { $0.serials } }

    /// Calls `close` when a list names `serial` (at once when the current one does). The
    /// returned ID ends the watch (`unwatch`) when the connection closes by itself.
    @discardableResult
    public func watch(serial: String, close: @escaping @Sendable () -> Void) -> UInt64? {
        let serial = serial.lowercased()
        let id: UInt64? = state.withLock { state in
            guard !state.serials.contains(serial) else { return nil }
            state.nextWatch += 1
            state.watched[state.nextWatch] = (serial, close)
            return state.nextWatch
        }
        if id == nil { close() }
        return id
    }

    public func unwatch(_ id: UInt64) {
        _ = state.withLock { $0.watched.removeValue(forKey: id) }
    }

    /// Connections being watched (tests, and a leak check: closed ones are unwatched).
    public var watchedCount: Int { state.withLock { $0.watched.count } }
}

extension Certificate {
    /// The serial number as lowercase hex, the way `cox pki status` prints it.
    public var serialHex: String { serialNumber.bytes.map { String(format: "%02x", $0) }.joined() }
}

extension Channel {
    /// The chain our `PeerVerifier` validated for this connection, leaf first; nil
    /// before the handshake or when no client certificate was presented.
    public func pharosVerifiedChain() async throws -> [Certificate]? {
        guard let chain = try await nioSSL_peerValidatedCertificateChain().get() else { return nil }
        return try chain.map { try Certificate(derEncoded: $0.toDERBytes()) }
    }
}
