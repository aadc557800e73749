import Foundation
import Synchronization

/// Failed logins per key (a source IP, an account, a device): after `limit` failures within
/// `window`, that key is refused (429) until the oldest failure leaves the window. In memory: a restart forgets,
/// which only helps someone who can restart the controller anyway.
public final class LoginThrottle: Sendable {
    public let limit: Int
    public let window: Duration
    private let failures = Mutex<[String: [ContinuousClock.Instant]]>([:])

    public init(limit: Int = 5, window: Duration = .seconds(300)) {
        self.limit = limit
        self.window = window
    }

    /// Checks and records one attempt for `key` in one step: nil when it may go ahead (it
    /// already counts as a failure until `succeeded` clears the key), else how long until it
    /// may. So 200 parallel guesses get at most `limit` checks, not 200.
    public func attempt(_ key: String, now: ContinuousClock.Instant = .now) -> Duration? {
        failures.withLock { table in
            var recent = (table[key] ?? []).filter { now - $0 < window }
            if recent.count >= limit, let oldest = recent.first {
                table[key] = recent
                return window - (now - oldest)
            }
            recent.append(now)
            table[key] = recent
            return nil
        }
    }

    /// Removes the most recent attempt of `key` (one that turned out not to be a failure).
    public func giveBack(_ key: String) {
        failures.withLock { table in
            guard var recent = table[key], !recent.isEmpty else { return }
            recent.removeLast()
            table[key] = recent.isEmpty ? nil : recent
        }
    }

    public func succeeded(_ key: String) {
        failures.withLock { $0[key] = nil }
    }
}
