import Foundation
import PharosTLS
import Testing
import X509

/// When a leaf is due for renewal: two thirds into its life, and never later than 20 days in.
struct LeafLifetimeTests {
    static let start = Date(timeIntervalSince1970: 1_800_000_000)
    static let day: TimeInterval = 86400

    static func renewal(afterDays days: Double) -> TimeInterval {
        Certificate.renewalDate(notBefore: start, notAfter: start + days * day).timeIntervalSince(start) / day
    }

    @Test func aLeafIsRenewedTwoThirdsIntoItsLife() {
        #expect(Self.renewal(afterDays: 30) == 20)
        #expect(abs(Self.renewal(afterDays: 7) - 14.0 / 3) < 1e-9, "the controller's 7-day leaf")
        #expect(Self.renewal(afterDays: 3) == 2)
    }

    /// A relay enrolled with --cert-days 365, or a leaf issued before leaves lasted 30 days,
    /// is not left alone for 243 days.
    @Test func aLongerLeafIsRenewedTwentyDaysIn() {
        #expect(Self.renewal(afterDays: 365) == 20)
        #expect(Self.renewal(afterDays: 31) == 20)
    }
}
