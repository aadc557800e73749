import Foundation
import Logging
import PharosProto
import PharosSpec
import PharosTLS
import Synchronization
import X509

/// Renews the relay's leaf two thirds into its life (by the wall clock, looked at every
/// `renewal.check_seconds`), over its own upstream connection: the tunnel the controller
/// dialed, or the co-located controller's socket. The new leaf goes to both ports at once;
/// connections already open, the tunnel among them, stay as they are. A failed renewal is
/// logged and tried again at the next look; the controller allows one an hour.
public final class RelayRenewal: Sendable {
    let certificates: RelayCertificates
    /// The serial of the leaf the listeners present (a failed hand-over is tried again).
    private let applied: Mutex<String>
    let upstream: Upstream
    /// Hands the new identity (leaf, Fleet CA, root) to the listeners.
    let apply: @Sendable (TLSIdentity) throws -> Void
    let now: @Sendable () -> Date
    let logger: Logger

    public init(certificates: RelayCertificates, upstream: Upstream, now: @escaping @Sendable () -> Date = { Date() }, logger: Logger,
                apply: @escaping @Sendable (TLSIdentity) throws -> Void) {
        self.certificates = certificates
        self.upstream = upstream
        self.apply = apply
        self.now = now
        self.logger = logger
        applied = Mutex(certificates.leaf.serialHex)
    }

    /// Whether the leaf is due (two thirds into its life at `now`).
    public var isDue: Bool { now() >= certificates.leaf.renewalDate }

    public func run(every interval: Duration) async {
        var failures = 0
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if applied.withLock({ $0 }) != certificates.leaf.serialHex {
                do { try handOver() } catch {
                    logger.error("the renewed certificate is stored but not presented", metadata: ["error": "\(error)"])
                }
            }
            guard !Task.isCancelled, isDue, upstream.dialsOnDemand || upstream.isConnected else { continue }
            do {
                _ = try await renewNow()
                failures = 0
            } catch {
                failures += 1
                // Every failure once the leaf is in its last fifth, else the first of a streak.
                let leaf = certificates.leaf
                let left = leaf.notValidAfter.timeIntervalSince(now())
                let urgent = left < leaf.notValidAfter.timeIntervalSince(leaf.notValidBefore) / 5
                if urgent || failures == 1 {
                    logger.log(level: urgent ? .error : .warning, "certificate renewal failed",
                               metadata: ["error": "\(error)", "expires": "\(leaf.notValidAfter)", "attempts": "\(failures)"])
                }
            }
        }
    }

    /// One renewal, due or not: asks the controller, checks and stores its answer, and
    /// presents the new leaf on both ports. Returns the new leaf.
    @discardableResult
    public func renewNow() async throws -> Certificate {
        let previous = certificates.leaf
        let (key, request) = try certificates.renewalRequest()
        let body = try await upstream.unaryCall(path: PharosIdentity.renewRelayCertificatePath, request: try request.serializedBytes())
        let response: Pharos_Relay_V1_RenewRelayCertificateResponse
        do { response = try Pharos_Relay_V1_RenewRelayCertificateResponse(serializedBytes: body) } catch {
            throw RelayCertificates.Failure.unreadableChain("the answer is not a RenewRelayCertificateResponse: \(error)")
        }
        let renewed = try await certificates.accept(chainPEM: response.certificateChainPem, for: key)
        try handOver()
        logger.info("certificate renewed", metadata: ["serial": "\(renewed.leaf.serialHex)", "previous": "\(previous.serialHex)",
                                                     "not_after": "\(renewed.leaf.notValidAfter)"])
        return renewed.leaf
    }

    /// Gives the listeners the current identity (leaf, Fleet CA, root).
    private func handOver() throws {
        let identity = try certificates.presented
        try apply(identity)
        applied.withLock { $0 = identity.leaf.serialHex }
    }
}
