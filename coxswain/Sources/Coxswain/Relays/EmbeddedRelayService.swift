import PharosLifecycle
import Relay
import ServiceLifecycle

/// The embedded relay as a service of `cox serve`: opens its client port once the account
/// socket is up (so no client is let in before the deny list is read), re-issues its
/// in-memory leaf every `RelayTier.embeddedLeafRotation` without closing the port or any
/// connection (a failed re-issue is logged and tried again; it never stops the controller),
/// and closes the port at shutdown.
struct EmbeddedRelayService: Service {
    let tier: RelayTier
    let after: OneShot<Void>
    let ready: @Sendable (Int) -> Void
    var rotation = RelayTier.embeddedLeafRotation
    var retry = RelayTier.embeddedLeafRetry

    func run() async throws {
        guard await after.value != nil else { return }
        let listener = try await tier.startEmbeddedRelay()
        tier.setEmbeddedListening(true)
        ready(listener.port)
        let tier = self.tier, rotation = self.rotation, retry = self.retry
        defer { tier.setEmbeddedListening(false) }
        await cancelWhenGracefulShutdown {
            var wait = rotation
            while (try? await Task.sleep(for: wait)) != nil {
                do {
                    try listener.replaceIdentity(try tier.embeddedRelayIdentity())
                    tier.logger.info("embedded relay leaf re-issued")
                    wait = rotation
                } catch {
                    tier.logger.error("embedded relay leaf not re-issued; the current one is kept", metadata: ["error": "\(error)"])
                    wait = retry
                }
            }
        }
        try? await listener.close()
    }
}
