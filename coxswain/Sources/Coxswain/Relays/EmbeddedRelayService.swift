import Foundation
import PharosLifecycle
import Relay
import PharosTLS
import ServiceLifecycle
import X509

/// The embedded relay as a service of `cox serve`: opens its client port once the account
/// socket is up (so no client is let in before the deny list is read), re-issues its
/// in-memory leaf at two thirds of its life by the wall clock (checked every
/// `RelayTier.embeddedLeafCheck`) without closing the port or any connection (a failed
/// re-issue is logged and tried again; it never stops the controller), and closes the port
/// at shutdown.
struct EmbeddedRelayService: Service {
    let tier: RelayTier
    let after: OneShot<Void>
    let ready: @Sendable (Int) -> Void
    var check = RelayTier.embeddedLeafCheck

    func run() async throws {
        guard await after.value != nil else { return }
        let (listener, first) = try await tier.startEmbeddedRelay()
        tier.setEmbeddedListening(true)
        ready(listener.port)
        let tier = self.tier, check = self.check
        defer { tier.setEmbeddedListening(false) }
        await cancelWhenGracefulShutdown {
            var leaf = first
            while (try? await Task.sleep(for: check)) != nil {
                guard Date() >= leaf.renewalDate else { continue }
                do {
                    let identity = try tier.embeddedRelayIdentity()
                    try listener.replaceIdentity(identity)
                    leaf = identity.leaf
                    tier.logger.info("embedded relay leaf re-issued", metadata: ["not_after": "\(leaf.notValidAfter)"])
                } catch {
                    tier.logger.error("embedded relay leaf not re-issued; the current one is kept", metadata: ["error": "\(error)"])
                }
            }
        }
        try? await listener.close()
    }
}
