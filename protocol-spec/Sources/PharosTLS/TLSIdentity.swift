import Foundation
import NIOSSL
import PharosSpec
import SwiftASN1
import X509

/// A leaf certificate (with its issuing chain) and its private key, as this process presents them.
public struct TLSIdentity: Sendable {
    /// Leaf first, then intermediates.
    public let certificates: [Certificate]
    public let nioChain: [NIOSSLCertificate]
    public let nioPrivateKey: NIOSSLPrivateKey

    public var leaf: Certificate { certificates[0] }

    /// Loads `certificatePath` (leaf then chain, PEM) and `keyPath` (PEM, mode 0600 or stricter).
    public init(certificatePath: String, keyPath: String) throws(TLSSetupError) {
        try PEMFile.requirePrivate(keyPath)
        try self.init(certificatePEM: PEMFile.read(certificatePath), keyPEM: PEMFile.read(keyPath),
                      source: "\(certificatePath) + \(keyPath)")
    }

    public init(certificatePEM: String, keyPEM: String, source: String = "TLS identity") throws(TLSSetupError) {
        let certificates = try PEMFile.certificates(certificatePEM, source: source)
        let key: Certificate.PrivateKey
        do {
            key = try Certificate.PrivateKey(pemEncoded: keyPEM)
        } catch {
            throw .invalidPrivateKey(source: source, reason: "\(error)")
        }
        guard key.publicKey == certificates[0].publicKey else { throw .keyDoesNotMatchCertificate(source: source) }
        do {
            self.nioPrivateKey = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
            self.nioChain = try certificates.map { try NIOSSLCertificate(bytes: $0.derBytes(), format: .der) }
        } catch {
            throw .invalidPrivateKey(source: source, reason: "\(error)")
        }
        self.certificates = certificates
    }

    private init(certificates: [Certificate], nioChain: [NIOSSLCertificate], nioPrivateKey: NIOSSLPrivateKey) {
        self.certificates = certificates
        self.nioChain = nioChain
        self.nioPrivateKey = nioPrivateKey
    }

    /// The same key presenting `extra` after its chain (a relay adds the root, which an
    /// enrolling device pins by hash); certificates already in the chain are not repeated.
    public func presenting(_ extra: [Certificate]) throws(TLSSetupError) -> TLSIdentity {
        let added = extra.filter { !certificates.contains($0) }
        do {
            let nio = try added.map { try NIOSSLCertificate(bytes: $0.derBytes(), format: .der) }
            return TLSIdentity(certificates: certificates + added, nioChain: nioChain + nio, nioPrivateKey: nioPrivateKey)
        } catch {
            throw .invalidCertificate(source: "extra chain certificates", reason: "\(error)")
        }
    }
}

/// The roots a peer must chain to. Only these: never the system store.
public struct TrustRoots: Sendable {
    public let certificates: [Certificate]
    public let nioCertificates: [NIOSSLCertificate]

    public init(path: String) throws(TLSSetupError) {
        try self.init(pem: PEMFile.read(path), source: path)
    }

    public init(pem: String, source: String = "trust roots") throws(TLSSetupError) {
        try self.init(certificates: PEMFile.certificates(pem, source: source), source: source)
    }

    public init(certificates: [Certificate], source: String = "trust roots") throws(TLSSetupError) {
        guard !certificates.isEmpty else { throw .noCertificates(source: source) }
        do {
            self.nioCertificates = try certificates.map { try NIOSSLCertificate(bytes: $0.derBytes(), format: .der) }
        } catch {
            throw .invalidCertificate(source: source, reason: "\(error)")
        }
        self.certificates = certificates
    }
}

extension Certificate {
    public func derBytes() throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(self)
        return serializer.serializedBytes
    }

    /// PEM in Go's layout, the input of `Fingerprint.certificate`.
    public func pemString() throws -> String {
        PEM.encode(type: "CERTIFICATE", der: try derBytes())
    }

    /// Every `O=` value of the subject.
    public var organizations: [String] {
        subject.flatMap { $0 }.filter { $0.type == .RDNAttributeType.organizationName }.map { String(describing: $0.value) }
    }

    public var commonNames: [String] {
        subject.flatMap { $0 }.filter { $0.type == .RDNAttributeType.commonName }.map { String(describing: $0.value) }
    }
}

enum PEMFile {
    static func read(_ path: String) throws(TLSSetupError) -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw .unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
    }

    static func requirePrivate(_ path: String) throws(TLSSetupError) {
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: path)
        } catch {
            throw .unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
        let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0
        if mode & 0o077 != 0 { throw .keyFileTooOpen(path: path, mode: String(mode, radix: 8)) }
    }

    static func certificates(_ pem: String, source: String) throws(TLSSetupError) -> [Certificate] {
        let blocks = PEM.decodeAll(type: "CERTIFICATE", from: pem)
        guard !blocks.isEmpty else { throw .noCertificates(source: source) }
        do {
            return try blocks.map { try Certificate(derEncoded: $0) }
        } catch {
            throw .invalidCertificate(source: source, reason: "\(error)")
        }
    }
}
