import Synchronization

/// Fingerprints (`sha256:<hex>`) of device certificates the controller has revoked. A call
/// from such a device is refused at the relay with `unauthenticated`, even on a connection
/// opened before the revocation. The embedded relay shares the controller's instance.
public final class DeviceDenyList: Sendable {
    private let fingerprints = Mutex<Set<String>>([])

    public init(_ initial: Set<String> = []) {
        fingerprints.withLock { $0 = initial }
    }

    public func replace(with next: Set<String>) { fingerprints.withLock { $0 = next } }

    public func contains(_ fingerprint: String) -> Bool { fingerprints.withLock { $0.contains(fingerprint) } }

    public var count: Int { fingerprints.withLock { $0.count } }
}
