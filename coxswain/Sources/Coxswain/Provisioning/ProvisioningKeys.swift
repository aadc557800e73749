import Crypto
import Foundation
import PharosSpec

/// Where provisioning draws its secrets and identifiers: the system's CSPRNG in production,
/// a fixed sequence in tests so a plan can be compared whole.
public struct ProvisioningKeys: Sendable {
    public var wireGuardKey: @Sendable () -> Curve25519.KeyAgreement.PrivateKey
    /// 32 random bytes, base64.
    public var presharedKey: @Sendable () -> String
    public var xrayUUID: @Sendable () -> String
    public var peerID: @Sendable () -> String

    public init(wireGuardKey: @escaping @Sendable () -> Curve25519.KeyAgreement.PrivateKey,
                presharedKey: @escaping @Sendable () -> String, xrayUUID: @escaping @Sendable () -> String,
                peerID: @escaping @Sendable () -> String) {
        self.wireGuardKey = wireGuardKey
        self.presharedKey = presharedKey
        self.xrayUUID = xrayUUID
        self.peerID = peerID
    }

    public static let system = ProvisioningKeys(
        wireGuardKey: { Curve25519.KeyAgreement.PrivateKey() },
        presharedKey: { Data(secureRandomBytes(32)).base64EncodedString() },
        xrayUUID: { UUID().uuidString.lowercased() },
        peerID: { EntityID.make(.peer) })
}
