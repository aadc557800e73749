import Foundation
import Synchronization

/// Failed logins per key (a source IP, an account, a device): after `limit` failures within
/// `window`, that key is refused (429) until the oldest failure leaves the window. In memory: a restart forgets,
/// which only helps someone who can restart the controller anyway.
public final class LoginThrottle: Sendable {
    public let limit: Int
    public let window: Duration
    private struct Table {
        var failures: [String: [ContinuousClock.Instant]] = [:]
        /// The size at which keys whose failures all left the window are swept out: doubled
        /// after each sweep, so one attempt costs amortized O(1) and a flood of distinct keys
        /// (spoofed e-mails, device ids) cannot grow the table beyond what one window holds.
        var sweepAt = LoginThrottle.firstSweep
    }

    static let firstSweep = 1024
    private let table = Mutex(Table())

    public init(limit: Int = 5, window: Duration = .seconds(300)) {
        self.limit = limit
        self.window = window
    }

    /// Checks and records one attempt for `key` in one step: nil when it may go ahead (it
    /// already counts as a failure until `succeeded` clears the key), else how long until it
    /// may. So 200 parallel guesses get at most `limit` checks, not 200.
    public func attempt(_ key: String, now: ContinuousClock.Instant = .now) -> Duration? {
        table.withLock { table in
            if table.failures.count >= table.sweepAt {
                table.failures = table.failures.filter { _, times in times.last.map { now - $0 < window } ?? false }
                table.sweepAt = max(Self.firstSweep, table.failures.count * 2)
            }
            var recent = (table.failures[key] ?? []).filter { now - $0 < window }
            if recent.count >= limit, let oldest = recent.first {
                table.failures[key] = recent
                return window - (now - oldest)
            }
            recent.append(now)
            table.failures[key] = recent
            return nil
        }
    }

    /// Keys with failures held (swept lazily: some may have left the window already).
    var trackedKeys: Int { table.withLock { $0.failures.count } }

    /// Removes the most recent attempt of `key` (one that turned out not to be a failure).
    public func giveBack(_ key: String) {
        table.withLock { table in
            guard var recent = table.failures[key], !recent.isEmpty else { return }
            recent.removeLast()
            table.failures[key] = recent.isEmpty ? nil : recent
        }
    }

    public func succeeded(_ key: String) {
        table.withLock { $0.failures[key] = nil }
    }
}
