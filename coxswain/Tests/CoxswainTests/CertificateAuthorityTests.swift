import Crypto
import Foundation
import PharosSpec
import PharosTLS
import PharosTestSupport
import SwiftASN1
import Testing
import X509
@testable import Coxswain

/// Every certificate the CA issues is checked by an independent verifier: `openssl`.
@Suite final class CertificateAuthorityTests {
    let ca: CertificateAuthority
    let dir: String

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    init() throws {
        ca = try CertificateAuthority.generate()
        dir = "/tmp/cox-pki-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try write(ca.root.certificate, "root.pem")
        try write(ca.fleet.certificate, "fleet.pem")
        try write(ca.device.certificate, "device.pem")
    }

    func write(_ certificate: Certificate, _ name: String) throws {
        try certificate.serializeAsPEM().pemString.write(toFile: "\(dir)/\(name)", atomically: true, encoding: .utf8)
    }

    @discardableResult
    func openssl(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try Tool.run("/usr/bin/openssl", arguments)
    }

    static func csr(commonName: String = "whatever", sans: [String] = []) throws -> (pem: String, key: P256.Signing.PrivateKey) {
        let key = P256.Signing.PrivateKey()
        var attributes = CertificateSigningRequest.Attributes()
        if !sans.isEmpty {
            attributes.insert(try CertificateSigningRequest.Attribute(ExtensionRequest(extensions: Certificate.Extensions {
                SubjectAlternativeNames(sans.map { .dnsName($0) })
            })))
        }
        let csr = try CertificateSigningRequest(version: .v1, subject: DistinguishedName { CommonName(commonName) },
                                                privateKey: .init(key), attributes: attributes, signatureAlgorithm: .ecdsaWithSHA256)
        return (try csr.serializeAsPEM().pemString, key)
    }

    @Test func hierarchyHasUpstreamShape() throws {
        #expect(ca.root.certificate.subject == ca.root.certificate.issuer)
        #expect(try ca.root.certificate.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 1))
        #expect(try ca.fleet.certificate.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 0))
        let years = ca.root.certificate.notValidAfter.timeIntervalSince(ca.root.certificate.notValidBefore) / (365.25 * 86400)
        #expect((9.99...10.01).contains(years))
        #expect(ca.fleet.certificate.commonNames == ["PharosVPN Fleet CA"] && ca.device.certificate.commonNames == ["PharosVPN Device CA"])
        #expect(try ca.fingerprint.count == 64)
        let verified = try openssl(["verify", "-CAfile", "\(dir)/root.pem", "\(dir)/fleet.pem", "\(dir)/device.pem"])
        #expect(verified.status == 0, "\(verified.output)")
    }

    @Test(arguments: [
        (LeafProfile.node(id: "nod_aaaaaaaaaaaaaaaa", addresses: ["198.51.100.7", "node-a.example.org"]), "sslserver", "fleet.pem"),
        (LeafProfile.relay(hostname: "relay.example.org"), "sslserver", "fleet.pem"),
        (LeafProfile.relay(hostname: "relay.example.org"), "sslclient", "fleet.pem"),
        (LeafProfile.controller, "sslclient", "fleet.pem"),
        (LeafProfile.device(id: "dev_aaaaaaaaaaaaaaaa"), "sslclient", "device.pem"),
    ])
    func opensslVerifiesEveryLeafWithItsPurpose(profile: LeafProfile, purpose: String, intermediate: String) throws {
        let leaf = try ca.issue(csrPEM: Self.csr().pem, profile: profile, validity: 86400 * 365)
        let name = "leaf-\(UUID().uuidString.prefix(6)).pem"
        try write(leaf, name)
        let ok = try openssl(["verify", "-CAfile", "\(dir)/root.pem", "-untrusted", "\(dir)/\(intermediate)", "-purpose", purpose, "\(dir)/\(name)"])
        #expect(ok.status == 0, "\(ok.output)")
        // The wrong intermediate must not verify.
        let other = intermediate == "fleet.pem" ? "device.pem" : "fleet.pem"
        let wrong = try openssl(["verify", "-CAfile", "\(dir)/root.pem", "-untrusted", "\(dir)/\(other)", "\(dir)/\(name)"])
        #expect(wrong.status != 0)
    }

    @Test func usagesAreExactlyThoseOfTheProfile() throws {
        let node = try ca.issue(csrPEM: Self.csr().pem, profile: .node(id: "n", addresses: ["198.51.100.7"]), validity: 3600)
        try write(node, "node.pem")
        #expect(try openssl(["verify", "-CAfile", "\(dir)/root.pem", "-untrusted", "\(dir)/fleet.pem", "-purpose", "sslclient", "\(dir)/node.pem"]).status != 0,
                "a node server certificate must not be usable as a client certificate")
        let text = try openssl(["x509", "-in", "\(dir)/node.pem", "-noout", "-text"]).output
        #expect(text.contains("IP Address:198.51.100.7"))
        #expect(text.contains("TLS Web Server Authentication") && !text.contains("TLS Web Client Authentication"))
        let relay = try ca.issue(csrPEM: Self.csr().pem, profile: .relay(hostname: "relay.example.org"), validity: 3600)
        #expect(relay.organizations == [PharosIdentity.Organization.relay])
    }

    @Test func subjectAndSANsComeFromTheProfileNeverFromTheCSR() throws {
        let (pem, key) = try Self.csr(commonName: "evil-admin", sans: ["bank.example.com"])
        let leaf = try ca.issue(csrPEM: pem, profile: .node(id: "nod_b", addresses: ["203.0.113.9"]), validity: 3600)
        #expect(leaf.commonNames == ["nod_b"])
        let sans = try #require(try leaf.extensions.subjectAlternativeNames)
        #expect(Array(sans) == [.ipAddress(ASN1OctetString(contentBytes: [203, 0, 113, 9]))])
        #expect(leaf.publicKey == Certificate.PublicKey(key.publicKey))
        #expect(!"\(leaf)".contains("bank.example.com") && !"\(leaf)".contains("evil-admin"))
    }

    @Test func badCSRsAreRefused() throws {
        #expect(throws: CertificateIssueError.self) { _ = try ca.issue(csrPEM: "not a csr", profile: .controller, validity: 3600) }
        // A CSR whose signature does not match its key: swap in another key's public half.
        let genuine = try CertificateSigningRequest(pemEncoded: Self.csr().pem)
        let forged = try CertificateSigningRequest(
            version: .v1, subject: genuine.subject, publicKey: Certificate.PublicKey(P256.Signing.PrivateKey().publicKey),
            attributes: genuine.attributes, signatureAlgorithm: genuine.signatureAlgorithm, signature: genuine.signature)
        #expect(throws: CertificateIssueError.badCSRSignature) {
            _ = try ca.issue(csrPEM: try forged.serializeAsPEM().pemString, profile: .controller, validity: 3600)
        }
        #expect(throws: CertificateIssueError.self) {
            _ = try ca.issue(csrPEM: Self.csr().pem, profile: .node(id: "n", addresses: ["bad name!"]), validity: 3600)
        }
        #expect(throws: CertificateIssueError.self) {
            _ = try ca.issue(csrPEM: Self.csr().pem, profile: .node(id: "n", addresses: []), validity: 3600)
        }
    }
}

