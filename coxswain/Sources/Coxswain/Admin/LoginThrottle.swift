import Foundation
import Synchronization

/// Failed admin logins per source IP: after `limit` failures within `window`, that address
/// is refused (429) until the oldest failure leaves the window. In memory: a restart forgets,
/// which only helps someone who can restart the controller anyway.
public final class LoginThrottle: Sendable {
    public let limit: Int
    public let window: Duration
    private let failures = Mutex<[String: [ContinuousClock.Instant]]>([:])

    public init(limit: Int = 5, window: Duration = .seconds(300)) {
        self.limit = limit
        self.window = window
    }

    /// Nil when `address` may try now; else how long until it may.
    public func retryAfter(_ address: String, now: ContinuousClock.Instant = .now) -> Duration? {
        failures.withLock { table in
            let recent = (table[address] ?? []).filter { now - $0 < window }
            table[address] = recent.isEmpty ? nil : recent
            guard recent.count >= limit, let oldest = recent.first else { return nil }
            return window - (now - oldest)
        }
    }

    public func recordFailure(_ address: String, now: ContinuousClock.Instant = .now) {
        failures.withLock { table in
            var recent = (table[address] ?? []).filter { now - $0 < window }
            recent.append(now)
            table[address] = Array(recent.suffix(limit))
        }
    }

    public func recordSuccess(_ address: String) {
        failures.withLock { $0[address] = nil }
    }
}
