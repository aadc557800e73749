import Foundation

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
        try sql.rows("SELECT * FROM ca").map {
            StoredAuthority(role: $0["role"], certificatePEM: $0["cert_pem"], keyPEM: $0["key_pem"], serial: $0["serial"],
                            notBefore: $0["not_before"], notAfter: $0["not_after"])
        }
    }

    public func insert(_ authority: StoredAuthority) throws {
        try sql.execute("INSERT INTO ca (role, cert_pem, key_pem, serial, not_before, not_after) VALUES (?, ?, ?, ?, ?, ?)",
                        [authority.role, authority.certificatePEM, authority.keyPEM, authority.serial,
                         authority.notBefore, authority.notAfter])
    }

    public func controllerCertificate() throws -> (certificatePEM: String, keyPEM: String, notAfter: Int64)? {
        guard let row = try sql.row("SELECT * FROM controller_cert WHERE id = 1") else { return nil }
        return (row["cert_pem"], row["key_pem"], row["not_after"])
    }

    public func storeControllerCertificate(certificatePEM: String, keyPEM: String, notAfter: Int64) throws {
        try sql.execute("""
            INSERT INTO controller_cert (id, cert_pem, key_pem, not_after) VALUES (1, ?, ?, ?)
            ON CONFLICT (id) DO UPDATE SET cert_pem = excluded.cert_pem, key_pem = excluded.key_pem, not_after = excluded.not_after
            """, [certificatePEM, keyPEM, notAfter])
    }

    public func profileSigningKey() throws -> Data? {
        try sql.value(Data.self, "SELECT private_key FROM profile_signing_key WHERE id = 1")
    }

    public func storeProfileSigningKey(privateKey: Data, publicKey: Data) throws {
        try sql.execute("INSERT INTO profile_signing_key (id, private_key, public_key, created_at) VALUES (1, ?, ?, ?)",
                        [privateKey, publicKey, now])
    }
}
