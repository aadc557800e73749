import Foundation
import PharosSpec
import X509

extension Certificate {
    /// The first certificate of a PEM text (a chain's leaf); nil when none parses.
    public init?(firstIn pem: String) {
        guard let der = PEM.decodeAll(type: "CERTIFICATE", from: pem).first, let leaf = try? Certificate(derEncoded: der) else {
            return nil
        }
        self = leaf
    }

    /// When this leaf is due for renewal (`Certificate.renewalDate(notBefore:notAfter:)`).
    public var renewalDate: Date { Self.renewalDate(notBefore: notValidBefore, notAfter: notValidAfter) }

    /// Every leaf of the fleet is renewed two thirds into its life (DESIGN.md "Trust and
    /// identity"): the last third is what survives a controller or client that is away.
    public static func renewalDate(notBefore: Date, notAfter: Date) -> Date {
        notBefore + notAfter.timeIntervalSince(notBefore) * 2 / 3
    }
}
