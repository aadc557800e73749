import Crypto
import Foundation
import PharosTestSupport
import Testing
import X509
@testable import CaravelCore

/// What a device accepts as its renewed certificate (issue #20): only one for the key it
/// just made, naming the same device, from the same CA, valid now.
@Suite struct CertificateRenewalCheckTests {
    @Test func onlyACertificateForOurNewKeyFromOurCAIsAccepted() throws {
        let pki = try TestPKI()
        let current = try pki.leaf(commonName: "dev_abc", organization: "PharosVPN Device", usage: [.clientAuth], issuer: .device).certificate
        let key = P256.Signing.PrivateKey()
        let ours = Certificate.PublicKey(key.publicKey)
        let good = try pki.leaf(commonName: "dev_abc", organization: "PharosVPN Device", usage: [.clientAuth], issuer: .device, publicKey: ours)
        #expect(try Account.check(good.certificatePEM, replacing: current, key: key, now: Date()) == good.certificate)

        // A forged Device CA with the same names as ours: only its key (and key ID) differ.
        let forged = try TestPKI()
        let hostile: [(String, String)] = [
            ("another key", try pki.leaf(commonName: "dev_abc", organization: "PharosVPN Device", usage: [.clientAuth], issuer: .device).certificatePEM),
            ("another device", try pki.leaf(commonName: "dev_xyz", organization: "PharosVPN Device", usage: [.clientAuth], issuer: .device,
                                             publicKey: ours).certificatePEM),
            ("another CA", try forged.leaf(commonName: "dev_abc", organization: "PharosVPN Device", usage: [.clientAuth], issuer: .device,
                                           publicKey: ours).certificatePEM),
            ("the Fleet CA", try pki.leaf(commonName: "dev_abc", organization: "PharosVPN Device", usage: [.clientAuth], issuer: .fleet,
                                          publicKey: ours).certificatePEM),
            ("expired", try pki.leaf(commonName: "dev_abc", organization: "PharosVPN Device", usage: [.clientAuth], issuer: .device,
                                     notValidBefore: Date() - 7200, notValidAfter: Date() - 3600, publicKey: ours).certificatePEM),
            ("not a certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            ("nothing", ""),
        ]
        for (name, pem) in hostile {
            #expect(throws: CaravelError.self, "\(name) was accepted") {
                _ = try Account.check(pem, replacing: current, key: key, now: Date())
            }
        }
    }
}
