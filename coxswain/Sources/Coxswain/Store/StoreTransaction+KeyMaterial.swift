import Foundation
import GRDB

/// One CA certificate and key as stored in `ca`.
public struct StoredAuthority: Sendable, Equatable {
    public var role: String
    public var certificatePEM: String
    public var keyPEM: String
    public var serial: String
    public var notBefore: Int64
    public var notAfter: Int64

    public init(role: String, certificatePEM: String, keyPEM: String, serial: String, notBefore: Int64, notAfter: Int64) {
        self.role = role
        self.certificatePEM = certificatePEM
        self.keyPEM = keyPEM
        self.serial = serial
        self.notBefore = notBefore
        self.notAfter = notAfter
    }
}

extension StoreTransaction {
    public func authorities() throws -> [StoredAuthority] {
        try Row.fetchAll(db, sql: "SELECT * FROM ca").map {
            StoredAuthority(role: $0["role"], certificatePEM: $0["cert_pem"], keyPEM: $0["key_pem"], serial: $0["serial"],
                            notBefore: $0["not_before"], notAfter: $0["not_after"])
        }
    }

    public func insert(_ authority: StoredAuthority) throws {
        try db.execute(sql: "INSERT INTO ca (role, cert_pem, key_pem, serial, not_before, not_after) VALUES (?, ?, ?, ?, ?, ?)",
                       arguments: [authority.role, authority.certificatePEM, authority.keyPEM, authority.serial,
                                   authority.notBefore, authority.notAfter])
    }

    public func controllerCertificate() throws -> (certificatePEM: String, keyPEM: String, notAfter: Int64)? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM controller_cert WHERE id = 1") else { return nil }
        return (row["cert_pem"], row["key_pem"], row["not_after"])
    }

    public func storeControllerCertificate(certificatePEM: String, keyPEM: String, notAfter: Int64) throws {
        try db.execute(sql: "INSERT OR REPLACE INTO controller_cert (id, cert_pem, key_pem, not_after) VALUES (1, ?, ?, ?)",
                       arguments: [certificatePEM, keyPEM, notAfter])
    }

    public func profileSigningKey() throws -> Data? {
        try Data.fetchOne(db, sql: "SELECT private_key FROM profile_signing_key WHERE id = 1")
    }

    public func storeProfileSigningKey(privateKey: Data, publicKey: Data) throws {
        try db.execute(sql: "INSERT INTO profile_signing_key (id, private_key, public_key, created_at) VALUES (1, ?, ?, ?)",
                       arguments: [privateKey, publicKey, now])
    }
}
