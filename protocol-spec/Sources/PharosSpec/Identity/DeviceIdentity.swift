import Crypto
import Foundation

/// The `.pharosid` file (0600): everything a device needs to reach its relay and
/// open what its controller seals for it.
public struct DeviceIdentity: Sendable, Equatable {
    public static let formatTag = "pharos-device"
    public static let currentVersion = 1
    public static let fileExtension = ".pharosid"
    public static let maximumSize = 1 << 20
    /// PEM block type around the raw 32-byte X25519 private key (not PKCS#8).
    public static let encryptionKeyPEMType = "X25519 PRIVATE KEY"
    static let format = ".pharosid"

    public var user: String
    public var alias: String
    public var relayAddress: String
    public var relayServerName: String
    /// Lowercase hex SHA-256 of the root certificate DER.
    public var caFingerprint: String
    /// Fleet CA certificate, PEM.
    public var fleetCA: String
    /// Device leaf, PEM.
    public var deviceCertificate: String
    /// PKCS#8 P-256 private key, PEM.
    public var deviceKey: String
    /// The controller's Ed25519 profile-signing key; empty when unknown.
    public var signingPublicKey: [UInt8]
    /// Only join-link devices have their own X25519 encryption key.
    public var encryptionKey: Curve25519.KeyAgreement.PrivateKey?

    public init(user: String = "", alias: String = "", relayAddress: String, relayServerName: String,
                caFingerprint: String = "", fleetCA: String, deviceCertificate: String, deviceKey: String,
                signingPublicKey: [UInt8] = [], encryptionKey: Curve25519.KeyAgreement.PrivateKey? = nil) {
        self.user = user
        self.alias = alias
        self.relayAddress = relayAddress
        self.relayServerName = relayServerName
        self.caFingerprint = caFingerprint
        self.fleetCA = fleetCA
        self.deviceCertificate = deviceCertificate
        self.deviceKey = deviceKey
        self.signingPublicKey = signingPublicKey
        self.encryptionKey = encryptionKey
    }

    public static func == (a: DeviceIdentity, b: DeviceIdentity) -> Bool {
        a.json == b.json
    }
}

extension DeviceIdentity {
    /// Key order fmt, v, user, alias, relay_addr, relay_server_name, ca_fingerprint,
    /// fleet_ca, device_cert, device_key, signing_public_key, encryption_key; the
    /// optional ones omitted when empty.
    public var json: JSONValue {
        var m = [JSONMember("fmt", .string(Self.formatTag)), JSONMember("v", .integer(Self.currentVersion))]
        if !user.isEmpty { m.append(JSONMember("user", .string(user))) }
        if !alias.isEmpty { m.append(JSONMember("alias", .string(alias))) }
        m.append(JSONMember("relay_addr", .string(relayAddress)))
        m.append(JSONMember("relay_server_name", .string(relayServerName)))
        if !caFingerprint.isEmpty { m.append(JSONMember("ca_fingerprint", .string(caFingerprint))) }
        m.append(JSONMember("fleet_ca", .string(fleetCA)))
        m.append(JSONMember("device_cert", .string(deviceCertificate)))
        m.append(JSONMember("device_key", .string(deviceKey)))
        if !signingPublicKey.isEmpty { m.append(JSONMember("signing_public_key", .bytes(signingPublicKey))) }
        if let encryptionKey {
            m.append(JSONMember("encryption_key", .string(
                PEM.encode(type: Self.encryptionKeyPEMType, der: Array(encryptionKey.rawRepresentation)))))
        }
        return .object(m)
    }

    public func encoded() -> [UInt8] { json.indentedBytes() }

    public init(jsonBytes: [UInt8]) throws(PharosFormatError) {
        let f = try JSONFields(parsing: jsonBytes, format: Self.format, limit: Self.maximumSize)
        let fmt = try f.optionalString("fmt")
        guard fmt == Self.formatTag else { throw .notThisFormat(format: Self.format, found: fmt.isEmpty ? "missing" : "\"\(fmt)\"") }
        let version = try f.integer("v", as: Int.self)
        guard version == Self.currentVersion else { throw .unsupportedVersion(format: Self.format, version: String(version)) }
        let deviceKey = try f.string("device_key")
        guard (try? P256.Signing.PrivateKey(pemRepresentation: deviceKey)) != nil else {
            throw .invalidKey(field: "device_key", reason: "not a PKCS#8 P-256 private key in PEM")
        }
        let fleetCA = try f.string("fleet_ca")
        guard PEM.decode(type: "CERTIFICATE", from: fleetCA) != nil else {
            throw .malformed(format: Self.format, reason: "fleet_ca holds no PEM certificate")
        }
        let deviceCertificate = try f.string("device_cert")
        guard PEM.decode(type: "CERTIFICATE", from: deviceCertificate) != nil else {
            throw .malformed(format: Self.format, reason: "device_cert holds no PEM certificate")
        }
        var encryptionKey: Curve25519.KeyAgreement.PrivateKey?
        let encryptionPEM = try f.optionalString("encryption_key")
        if !encryptionPEM.isEmpty {
            guard let raw = PEM.decode(type: Self.encryptionKeyPEMType, from: encryptionPEM), raw.count == 32,
                  let key = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: raw) else {
                throw .invalidKey(field: "encryption_key", reason: "expected a \(Self.encryptionKeyPEMType) PEM block of 32 bytes")
            }
            encryptionKey = key
        }
        let signing = try f.optionalBytes("signing_public_key") ?? []
        guard signing.isEmpty || signing.count == 32 else {
            throw .wrongLength(format: Self.format, field: "signing_public_key", expected: 32, actual: signing.count)
        }
        let relayAddress = try f.string("relay_addr")
        guard !relayAddress.isEmpty else { throw .missingField(format: Self.format, field: "relay_addr") }
        self.init(user: try f.optionalString("user"), alias: try f.optionalString("alias"),
                  relayAddress: relayAddress, relayServerName: try f.optionalString("relay_server_name"),
                  caFingerprint: try f.optionalString("ca_fingerprint"), fleetCA: fleetCA,
                  deviceCertificate: deviceCertificate, deviceKey: deviceKey, signingPublicKey: signing,
                  encryptionKey: encryptionKey)
    }
}
