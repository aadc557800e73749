import PharosLifecycle
import Relay
import ServiceLifecycle

/// The embedded relay as a service of `cox serve`: opens its client port once the account
/// socket is up (so no client is let in before the deny list is read), re-issues its
/// in-memory leaf every `RelayTier.embeddedLeafRotation` by reopening the port, and closes
/// it at shutdown.
struct EmbeddedRelayService: Service {
    let tier: RelayTier
    let after: OneShot<Void>
    let ready: @Sendable (Int) -> Void

    func run() async throws {
        guard await after.value != nil else { return }
        let first = try await tier.startEmbeddedRelay()
        tier.setEmbeddedListening(true)
        ready(first.port)
        let tier = self.tier
        defer { tier.setEmbeddedListening(false) }
        let last = try await cancelWhenGracefulShutdown {
            var current = first
            while true {
                do { try await Task.sleep(for: RelayTier.embeddedLeafRotation) } catch { return current }
                try? await current.close()
                current = try await tier.startEmbeddedRelay()
            }
        }
        try? await last.close()
    }
}
