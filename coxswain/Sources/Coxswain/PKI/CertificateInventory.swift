import Foundation
import PharosSpec
import PharosTLS
import X509

/// Every certificate the fleet stands on, with its expiry: the CAs, the controller's leaf,
/// each node's, relay's and device's. `cox pki status` prints it so an operator sees an
/// expiry coming (issue #20: today's leaves last a year and nothing renews them). The
/// embedded relay's leaf lives in memory only (re-issued every 20 days) and is not listed.
public struct CertificateEntry: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case root, fleetCA = "fleet-ca", deviceCA = "device-ca", controller, node, relay, device
    }

    public enum State: String, Sendable {
        case valid
        /// In the last fifth of its life: renew it now.
        case expiring
        case expired
        case revoked
    }

    public var kind: Kind
    /// The node, relay or device (with its user's e-mail) it belongs to; the role for CAs.
    public var name: String
    public var serial: String
    /// Microseconds since the epoch, as the store keeps time.
    public var notBefore: Int64
    public var notAfter: Int64
    public var revoked: Bool

    public func state(at now: Int64) -> State {
        if revoked { return .revoked }
        if now >= notAfter { return .expired }
        return (notAfter - now) * 5 <= max(notAfter - notBefore, 1) ? .expiring : .valid
    }
}

extension StoreTransaction {
    /// Every certificate in the store, soonest expiry first.
    public func certificateInventory() throws -> [CertificateEntry] {
        var entries: [CertificateEntry] = []
        for ca in try inventoryCAs() {
            let role = ca.role
            entries.append(CertificateEntry(kind: role == "root" ? .root : role == "fleet" ? .fleetCA : .deviceCA, name: role,
                                            serial: ca.serial, notBefore: ca.notBefore, notAfter: ca.notAfter, revoked: false))
        }
        if let controller = try controllerCertificate(), let entry = Self.entry(.controller, name: "coxswain-controller",
                                                                                pem: controller.certificatePEM, revoked: false) {
            entries.append(entry)
        }
        for leaf in try inventoryNodeLeaves() {
            if let entry = Self.entry(.node, name: leaf.name, pem: leaf.pem, revoked: leaf.revoked) {
                entries.append(entry)
            }
        }
        // A relay's leaf is the one it serves: the one it was last seen presenting (so a renewal
        // it never installed still runs into an expiry alert). A newer one issued to it and not
        // seen yet is listed beside it.
        for leaf in try inventoryRelayLeaves() {
            let presented = leaf.presentedSerial, serial = leaf.serial
            let name = presented.isEmpty || presented == serial ? leaf.name : "\(leaf.name) (not presented yet)"
            entries.append(CertificateEntry(kind: .relay, name: name, serial: serial, notBefore: leaf.notBefore,
                                            notAfter: leaf.notAfter, revoked: leaf.revoked))
        }
        for leaf in try inventoryDeviceLeaves() {
            let name = "\(leaf.owner)/\(leaf.name)"
            if let entry = Self.entry(.device, name: name, pem: leaf.pem, revoked: leaf.revoked) {
                entries.append(entry)
            }
        }
        // Node, relay and controller leaves revoked before they expire (a removed node's).
        let listed = Set(entries.map(\.serial))
        for revoked in try inventoryRevoked() where !listed.contains(revoked.serial) {
            let kind: CertificateEntry.Kind = switch revoked.kind {
            case "relay": .relay
            case "controller": .controller
            default: .node
            }
            entries.append(CertificateEntry(kind: kind, name: revoked.name, serial: revoked.serial, notBefore: revoked.notBefore,
                                            notAfter: revoked.notAfter, revoked: true))
        }
        return entries.sorted { ($0.notAfter, $0.kind.rawValue, $0.name) < ($1.notAfter, $1.kind.rawValue, $1.name) }
    }

    /// The first certificate of a stored chain; nil when it does not parse (then it cannot
    /// be in use either).
    static func entry(_ kind: CertificateEntry.Kind, name: String, pem: String, revoked: Bool) -> CertificateEntry? {
        guard let leaf = Certificate(firstIn: pem) else { return nil }
        return CertificateEntry(kind: kind, name: name, serial: leaf.serialHex, notBefore: FleetPKI.micros(leaf.notValidBefore),
                                notAfter: FleetPKI.micros(leaf.notValidAfter), revoked: revoked)
    }
}

/// Run hourly by `cox serve`: one open `certificate_expiry` alert per certificate in the last
/// fifth of its life (warning) or past its end (critical); the alert resolves itself once the
/// certificate is replaced, removed or revoked. Leaves renew themselves long before their
/// last fifth (#20), so an alert means a renewal did not happen: a node that cannot be
/// reached or refuses, a relay that never installed the leaf it was issued, a CA to rotate.
public enum CertificateWatch {
    public static let alertKind = "certificate_expiry"

    /// The alerts it opened.
    @discardableResult
    public static func check(_ store: Store, now: Int64 = StoreClock.now()) async throws -> [AlertRecord] {
        // Every stored leaf is parsed: in a read, so writers (a thousand devices' leaves) do not
        // wait on it. A leaf replaced in between gets its alert resolved by the next check.
        let inventory = try await store.read { tx in try tx.certificateInventory() }
        return try await store.write { tx in
            var opened: [AlertRecord] = [], raised = Set<String>()
            for entry in inventory {
                let state = entry.state(at: now)
                guard state == .expiring || state == .expired else { continue }
                let key = "\(alertKind):\(state.rawValue):\(entry.kind.rawValue):\(entry.serial)"
                raised.insert(key)
                let detail = FleetService.detail(["kind": entry.kind.rawValue, "name": entry.name, "serial": entry.serial,
                                                  "state": state.rawValue, "not_after": LiveEvent.timestamp(entry.notAfter)])
                let (alert, isNew) = try tx.raiseAlert(kind: alertKind, severity: state == .expired ? .critical : .warning,
                                                       dedupKey: key, detail: detail)
                if isNew { opened.append(alert) }
            }
            for status in [AlertStatus.open, .acknowledged] {
                for alert in try tx.alerts(AlertQuery(status: status, kind: alertKind, limit: 1000)).items
                where !raised.contains(alert.dedupKey) {
                    try tx.resolveAlert(dedupKey: alert.dedupKey)
                }
            }
            return opened
        }
    }
}
