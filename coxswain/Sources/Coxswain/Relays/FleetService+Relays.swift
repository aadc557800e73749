import Foundation
import PharosSpec
import PharosTLS

extension FleetService {
    public static let relayCertificateValidity: TimeInterval = 365 * 86400

    public struct EnrolledRelay: Sendable {
        public var relay: RelayRecord
        /// `relay.crt`: the relay leaf followed by the Fleet CA.
        public var certificateChainPEM: String
        /// `ca.crt`: the root.
        public var rootPEM: String
        /// `device-ca.crt`: clients' certificates must come from it.
        public var deviceCAPEM: String
    }

    /// `cox relays enroll`: signs the relay's CSR as `O=PharosVPN Relay`, ServerAuth +
    /// ClientAuth, SAN = `hostname` (assigned here, never copied from the CSR), and records the
    /// relay so `cox serve` dials its tunnel port at `endpoint`. `publicAddr` (default
    /// hostname:8443) is what join links through this relay name.
    public func enrollRelay(csrPEM: String, endpoint: String, hostname: String, name: String?, publicAddr: String?,
                            region: String = "", by actor: AuditActor) async throws -> EnrolledRelay {
        let endpoint = try Self.address(endpoint, defaultPort: PharosPorts.relayTunnel, flag: "--endpoint").description
        let hostname = hostname.trimmingCharacters(in: .whitespaces).lowercased()
        guard !hostname.isEmpty else { throw FleetInputError.emptyRelayHostname }
        let publicAddr = try Self.address(publicAddr ?? hostname, defaultPort: PharosPorts.relayClient, flag: "--public").description
        let leaf = try pki.authority.issue(csrPEM: csrPEM, profile: .relay(hostname: hostname), validity: Self.relayCertificateValidity)
        let chain = try leaf.pemString() + pki.authority.fleet.certificate.pemString()
        let (serial, notAfter) = (leaf.serialHex, FleetPKI.micros(leaf.notValidAfter))
        let relay = try await store.write { tx in
            let relay = RelayRecord(id: EntityID.make(.relay), name: name ?? hostname, kind: .remote, endpoint: endpoint,
                                    hostname: hostname, publicAddr: publicAddr, status: .pending, region: region, agentVersion: "",
                                    certSerial: serial, certNotAfter: notAfter, version: 1, createdAt: tx.now, updatedAt: tx.now)
            try tx.insert(relay)
            try tx.appendAudit(AuditEntry(action: "relay.add", targetType: "relay", targetID: relay.id,
                                          detail: Self.detail(["name": relay.name, "endpoint": endpoint, "hostname": hostname,
                                                               "serial": serial])), by: actor)
            return relay
        }
        return EnrolledRelay(relay: relay, certificateChainPEM: chain, rootPEM: try pki.authority.root.certificate.pemString(),
                             deviceCAPEM: try pki.authority.device.certificate.pemString())
    }

    /// `cox relays rm`: the controller stops dialing it within one reconcile interval.
    public func removeRelay(_ reference: String, by actor: AuditActor) async throws -> RelayRecord {
        try await store.write { tx in
            let relay = try tx.relay(reference)
            // Its leaf is refused from now on, also if it shows up at another relay's address
            // under the same hostname (a re-enrolled host), until it expires.
            if relay.kind == .remote, !relay.certSerial.isEmpty, relay.certNotAfter > tx.now {
                try tx.insertRevoked(RevokedCertificate(
                    serial: relay.certSerial, kind: .relay, name: relay.name,
                    notBefore: relay.certNotBefore,
                    notAfter: relay.certNotAfter, revokedAt: tx.now, reason: "relay removed"))
            }
            try tx.deleteRelay(relay.id)
            try tx.appendAudit(AuditEntry(action: "relay.rm", targetType: "relay", targetID: relay.id,
                                          detail: Self.detail(["name": relay.name])), by: actor)
            return relay
        }
    }
}

extension RelayRecord {
    /// The store keeps a relay leaf's expiry only; every relay leaf lives
    /// `FleetService.relayCertificateValidity`, which gives its start.
    var certNotBefore: Int64 { certNotAfter - Int64(FleetService.relayCertificateValidity * 1_000_000) }
}
