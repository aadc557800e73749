import Foundation
import PharosSpec
import SwiftASN1
import X509

/// What a leaf is for. The controller decides subject, SANs, EKU and issuer from the
/// profile alone: nothing of a CSR but its public key ever reaches a certificate.
public enum LeafProfile: Sendable, Equatable {
    /// A node's control-port server certificate; SANs = the addresses the controller dials.
    case node(id: String, addresses: [String])
    /// A relay: O=CN=PharosVPN Relay, server and client auth, SAN = its public hostname.
    case relay(hostname: String)
    /// The controller's client certificate for node control and relay tunnels.
    case controller
    /// A device's client certificate, from the Device CA.
    case device(id: String)
    /// The SIEM stream's server certificate (`siem.listen`); SANs = the names consumers dial.
    case monitor(names: [String])

    var issuedByDeviceCA: Bool { if case .device = self { true } else { false } }

    var usages: [ExtendedKeyUsage.Usage] {
        switch self {
        case .node, .monitor: [.serverAuth]
        case .relay: [.serverAuth, .clientAuth]
        case .controller, .device: [.clientAuth]
        }
    }

    func subject() throws -> DistinguishedName {
        switch self {
        case .node(let id, _):
            try DistinguishedName { OrganizationName(PharosIdentity.Organization.fleet); CommonName(id) }
        case .relay:
            try DistinguishedName { OrganizationName(PharosIdentity.Organization.relay); CommonName(PharosIdentity.Organization.relay) }
        case .controller:
            try DistinguishedName { OrganizationName(PharosIdentity.Organization.fleet); CommonName(PharosIdentity.CommonName.controller) }
        case .device(let id):
            try DistinguishedName { OrganizationName(PharosIdentity.Organization.device); CommonName(id) }
        case .monitor:
            try DistinguishedName { OrganizationName(PharosIdentity.Organization.fleet); CommonName("PharosVPN Monitor") }
        }
    }

    func subjectAlternativeNames() throws(CertificateIssueError) -> SubjectAlternativeNames? {
        switch self {
        case .node(_, let addresses):
            guard !addresses.isEmpty else { throw .invalidProfile("a node certificate needs at least one address") }
            return SubjectAlternativeNames(try addresses.map { address throws(CertificateIssueError) in try Self.generalName(address) })
        case .relay(let hostname):
            return SubjectAlternativeNames([try Self.generalName(hostname)])
        case .monitor(let names):
            guard !names.isEmpty else { throw .invalidProfile("a monitor certificate needs at least one name") }
            return SubjectAlternativeNames(try names.map { name throws(CertificateIssueError) in try Self.generalName(name) })
        case .controller, .device:
            return nil
        }
    }

    /// An IPv4/IPv6 literal becomes an IP SAN, anything else a DNS name (validated).
    static func generalName(_ text: String) throws(CertificateIssueError) -> GeneralName {
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return .ipAddress(ASN1OctetString(contentBytes: withUnsafeBytes(of: &v4) { Array($0) }[...])) }
        if inet_pton(AF_INET6, text, &v6) == 1 { return .ipAddress(ASN1OctetString(contentBytes: withUnsafeBytes(of: &v6) { Array($0) }[...])) }
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        guard !text.isEmpty, text.count <= 253, labels.allSatisfy({ label in
            !label.isEmpty && label.count <= 63 && label.first != "-" && label.last != "-"
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }) else { throw .invalidProfile("\"\(text)\" is neither an IP address nor a DNS name") }
        return .dnsName(text.lowercased())
    }
}

public enum CertificateIssueError: Error, Equatable, CustomStringConvertible {
    case unreadableCSR(String)
    case badCSRSignature
    case unsupportedKey(String)
    case invalidProfile(String)

    public var description: String {
        switch self {
        case .unreadableCSR(let reason): "the CSR does not parse: \(reason)"
        case .badCSRSignature: "the CSR's signature does not verify: it was altered or not made with its key"
        case .unsupportedKey(let kind): "the CSR carries a \(kind) key; only ECDSA P-256 and P-384 are accepted"
        case .invalidProfile(let reason): reason
        }
    }
}
