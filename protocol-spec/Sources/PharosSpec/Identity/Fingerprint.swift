import Crypto

public enum Fingerprint {
    public static let prefix = "sha256:"

    /// `sha256:<hex>` of the PEM encoding (Go layout) of a certificate: the device
    /// identity a relay injects and the controller records.
    public static func certificate(der: [UInt8]) -> String {
        let pem = PEM.encode(type: "CERTIFICATE", der: der)
        return prefix + Base64.hex(SHA256.hash(data: Array(pem.utf8)))
    }

    /// Lowercase hex SHA-256 of the root certificate's DER: the `ca` of a join link.
    public static func caRoot(der: [UInt8]) -> String {
        Base64.hex(SHA256.hash(data: der))
    }
}
