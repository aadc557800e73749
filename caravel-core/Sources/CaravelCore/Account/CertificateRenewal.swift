import Crypto
import Foundation
import GRPCCore
import PharosProto
import PharosSpec
import PharosTLS
import X509

/// The device's certificate renews itself during sync (issue #20): leaves last 30 days and
/// are renewed once two thirds of their life have passed, through the relay, with the
/// current certificate. The key is made here and never leaves the device.
extension Account {
    public enum Renewal: Sendable, Equatable {
        case notDue(renewAt: Date)
        case renewed(notAfter: Date)
    }

    /// Renews when due (or now, with `force`): a fresh P-256 key and its CSR go to
    /// RenewDeviceCertificate over the current certificate; the answer must certify that key,
    /// for the same device (subject) from the same CA (issuer and its key ID), and be in date.
    /// The new identity is saved, then used once (Authenticate), which makes the controller
    /// retire the old certificate; if the relay or controller refuses the new one, the old
    /// identity is put back.
    public func renewCertificateIfDue(now: Date = Date(), force: Bool = false) async throws(CaravelError) -> Renewal {
        guard let (name, identity) = try store.identity() else {
            throw .notFound("this device is not enrolled: run `caravel enroll '<join link>'` first")
        }
        guard let current = Certificate(firstIn: identity.deviceCertificate) else {
            throw .untrusted("the device certificate in the identity does not parse; enroll again")
        }
        guard force || now >= current.renewalDate else { return .notDue(renewAt: current.renewalDate) }
        let deniedRelays = Set(try keptDeniedRelays(for: identity)?.list.serials ?? [])

        let key = P256.Signing.PrivateKey()
        let csrPEM: String
        do {
            let csr = try CertificateSigningRequest(
                version: .v1, subject: current.subject, privateKey: Certificate.PrivateKey(key),
                attributes: CertificateSigningRequest.Attributes(), signatureAlgorithm: .ecdsaWithSHA256)
            csrPEM = try csr.serializeAsPEM().pemString + "\n"
        } catch {
            throw .io("cannot make a certificate request: \(error)")
        }
        let answer: Pharos_Lifecycle_V1_RenewDeviceCertificateResponse
        do {
            answer = try await RelayConnection.withDeviceConnection(identity: identity, deniedRelays: deniedRelays) { client in
                try await Pharos_Lifecycle_V1_DeviceLifecycle.Client(wrapping: client)
                    .renewDeviceCertificate(.with { $0.csrPem = csrPEM }, options: RelayConnection.options)
            }
        } catch {
            if let rpc = error as? RPCError, rpc.code == .unimplemented {
                throw .refused("the controller cannot renew device certificates (an upstream controller?); this one expires \(current.notValidAfter)")
            }
            throw RelayConnection.translate(error, relay: identity.relayAddress)
        }
        let renewed = try Self.check(answer.certificatePem, replacing: current, key: key, now: now)

        var next = identity
        next.deviceCertificate = answer.certificatePem
        next.deviceKey = key.pemRepresentation
        try store.saveIdentity(next, name: name)
        do {
            _ = try await RelayConnection.withDeviceClient(identity: next, deniedRelays: deniedRelays) { client in
                try await client.authenticate(Pharos_Account_V1_AuthenticateRequest(), options: RelayConnection.options)
            }
        } catch {
            // Only a refusal of the new certificate proves the controller did not make it
            // current; after anything else (unreachable, a timeout, an answer lost on the way
            // back) the old one may already be retired, so the new one stays.
            guard let rpc = error as? RPCError, rpc.code == .unauthenticated || rpc.code == .permissionDenied else {
                return .renewed(notAfter: renewed.notValidAfter)
            }
            try store.saveIdentity(identity, name: name)
            throw .refused("the renewed certificate was refused (\(rpc.message)); kept the current one, which expires \(current.notValidAfter)")
        }
        return .renewed(notAfter: renewed.notValidAfter)
    }

    /// What the controller answered must certify our new key for the same device and CA.
    static func check(_ pem: String, replacing current: Certificate, key: P256.Signing.PrivateKey,
                      now: Date) throws(CaravelError) -> Certificate {
        guard let leaf = Certificate(firstIn: pem) else {
            throw .untrusted("the renewed certificate does not parse; kept the current one")
        }
        let issuerKeyID = { (certificate: Certificate) in try? certificate.extensions.authorityKeyIdentifier?.keyIdentifier }
        var problems: [String] = []
        if leaf.publicKey != Certificate.PublicKey(key.publicKey) { problems.append("it is not for the key this device just made") }
        if leaf.subject != current.subject { problems.append("it names \(leaf.subject), not \(current.subject)") }
        if leaf.issuer != current.issuer || issuerKeyID(leaf) != issuerKeyID(current) { problems.append("another CA issued it") }
        if !(leaf.notValidBefore...leaf.notValidAfter).contains(now) { problems.append("it is not valid now") }
        guard problems.isEmpty else {
            throw .untrusted("the renewed certificate is refused: \(problems.joined(separator: "; ")); kept the current one")
        }
        return leaf
    }
}
