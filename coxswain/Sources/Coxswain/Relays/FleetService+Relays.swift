import Crypto
import Foundation
import PharosSpec
import PharosTLS
import X509

extension FleetService {
    /// A relay leaf's lifetime unless `cox relays enroll --cert-days` says otherwise; the relay
    /// renews it over its tunnel two thirds into its life (`renewRelayCertificate`).
    public static let relayCertificateDays = 30
    public static let maximumRelayCertificateDays = 365
    /// At most one renewal an hour per relay: a relay stuck in a loop cannot mint leaves.
    public static let relayRenewalInterval: Int64 = 3600 * 1_000_000

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
                            region: String = "", certificateDays: Int = FleetService.relayCertificateDays,
                            installedOver ssh: (target: SSHTarget, packageVersion: String)? = nil,
                            by actor: AuditActor) async throws -> EnrolledRelay {
        guard (1...Self.maximumRelayCertificateDays).contains(certificateDays) else {
            throw FleetInputError.relayCertificateDays(certificateDays)
        }
        let endpoint = try Self.address(endpoint, defaultPort: PharosPorts.relayTunnel, flag: "--endpoint").description
        let hostname = hostname.trimmingCharacters(in: .whitespaces).lowercased()
        guard !hostname.isEmpty else { throw FleetInputError.emptyRelayHostname }
        let publicAddr = try Self.address(publicAddr ?? hostname, defaultPort: PharosPorts.relayClient, flag: "--public").description
        let key = try CertificateAuthority.verifiedKey(ofCSR: csrPEM)
        // The relay proves its key when it renews (`PossessionProof`), which is P-256 only.
        guard P256.Signing.PublicKey(key) != nil else { throw CertificateIssueError.unsupportedKey("a relay key must be P-256 (relay gen-csr makes one)") }
        let leaf = try pki.authority.issue(publicKey: key, profile: .relay(hostname: hostname), validity: TimeInterval(certificateDays) * 86400)
        let chain = try leaf.pemString() + pki.authority.fleet.certificate.pemString()
        let (serial, notAfter) = (leaf.serialHex, FleetPKI.micros(leaf.notValidAfter))
        let relay = try await store.write { tx in
            let relay = RelayRecord(id: EntityID.make(.relay), name: name ?? hostname, kind: .remote, endpoint: endpoint,
                                    hostname: hostname, publicAddr: publicAddr, status: .pending, region: region, agentVersion: "",
                                    certSerial: serial, certNotAfter: notAfter, version: 1, createdAt: tx.now, updatedAt: tx.now)
            try tx.insert(relay)
            try tx.setRelayCertificateDays(relay: relay.id, days: certificateDays)
            try tx.recordRelayLeaf(relay: relay.id, leaf: leaf)
            var detail = ["name": relay.name, "endpoint": endpoint, "hostname": hostname, "serial": serial,
                          "cert_days": "\(certificateDays)"]
            if let ssh {
                try tx.setAgentSSH(.relay, id: relay.id, target: ssh.target, packageVersion: ssh.packageVersion)
                detail["ssh"] = ssh.target.description
                detail["package"] = ssh.packageVersion
            }
            try tx.appendAudit(AuditEntry(action: "relay.add", targetType: "relay", targetID: relay.id, detail: Self.detail(detail)), by: actor)
            return try tx.relay(relay.id)
        }
        return EnrolledRelay(relay: relay, certificateChainPEM: chain, rootPEM: try pki.authority.root.certificate.pemString(),
                             deviceCAPEM: try pki.authority.device.certificate.pemString())
    }

    public struct RemovedRelay: Sendable {
        public var relay: RelayRecord
        /// Unused join links that named the relay's public address and no longer work.
        public var expiredJoinLinks: Int
    }

    /// `cox relays rm`: the controller stops dialing it within one reconcile interval.
    public func removeRelay(_ reference: String, by actor: AuditActor) async throws -> RemovedRelay {
        try await store.write { tx in
            let relay = try tx.relay(reference)
            // Its leaves (the renewed ones too) are refused from now on, also if one shows up at
            // another relay's address under the same hostname (a re-enrolled host), until they expire.
            if relay.kind == .remote {
                for leaf in try tx.relayLeaves(relay: relay.id) {
                    try tx.insertRevoked(RevokedCertificate(serial: leaf.serial, kind: .relay, name: relay.name, notBefore: leaf.notBefore,
                                                            notAfter: leaf.notAfter, revokedAt: tx.now, reason: "relay removed"))
                }
            }
            // A device enrolling has no deny list yet: a join link naming this relay would hand
            // its token to whoever answers there with the removed relay's key. Those links end now.
            let expired = relay.publicAddr.isEmpty ? 0 : try tx.expireUnusedTickets(relayAddress: relay.publicAddr)
            try tx.deleteRelay(relay.id)
            try tx.appendAudit(AuditEntry(action: "relay.rm", targetType: "relay", targetID: relay.id,
                                          detail: Self.detail(["name": relay.name, "expired_join_links": "\(expired)"])), by: actor)
            return RemovedRelay(relay: relay, expiredJoinLinks: expired)
        }
    }
}

public enum RelayRenewalError: Error, Equatable, CustomStringConvertible {
    case unreadableCertificate
    case refused(String)
    case badProof
    case unknownLeaf(String)
    case superseded(String)
    case revoked(String)
    case unusableCSR(String)
    case tooSoon

    public var description: String {
        switch self {
        case .unreadableCertificate: "current_certificate_pem holds no certificate"
        case .refused(let reason): "the current certificate is refused: \(reason)"
        case .badProof: "possession_signature is not the current certificate's key's signature over this CSR"
        case .unknownLeaf(let serial): "certificate \(serial) was not issued to an enrolled relay"
        case .superseded(let serial):
            "certificate \(serial) is no longer this relay's: a newer one was issued (and a retry must send the same key's CSR)"
        case .revoked(let serial): "certificate \(serial) is revoked"
        case .unusableCSR(let reason): "csr_pem is not usable: \(reason)"
        case .tooSoon: "this relay renewed its certificate less than an hour ago; try again later"
        }
    }
}

extension FleetService {
    /// `RenewRelayCertificate`, asked by a relay over its own upstream connection. `currentPEM`
    /// must be a relay leaf this controller issued to a relay still enrolled, in date, not
    /// revoked, and `proof` its key's signature over `csrPEM` (`PossessionProof`); the CSR is
    /// for a fresh P-256 key. Which leaves may ask:
    /// - the relay's newest leaf: a new leaf is issued (at most one an hour), naming the
    ///   relay's hostname for its `cert_days`; every older leaf of the relay is revoked, since
    ///   the relay has shown it moved on (the key `relay gen-csr` left on disk dies with them);
    /// - the leaf before it, only to fetch the newest again for the same key (the answer was
    ///   lost, or the relay stopped before storing it): the same leaf comes back, nothing is
    ///   issued;
    /// - nothing older.
    public func renewRelayCertificate(csrPEM: String, currentPEM: String, proof: [UInt8])
        async throws(RelayRenewalError) -> (chainPEM: String, leaf: Certificate) {
        guard let current = Certificate(firstIn: currentPEM) else { throw .unreadableCertificate }
        let authority = pki.authority
        let fleetCA = authority.fleet.certificate
        let verifier: PeerVerifier
        do {
            verifier = PeerVerifier(roots: try TrustRoots(certificates: [authority.root.certificate]), requirements: PeerRequirements(
                usage: .serverAuth, issuers: [fleetCA], organizations: [PharosIdentity.Organization.relay]), intermediates: [fleetCA])
        } catch {
            throw .refused("\(error)")
        }
        if case .failure(let rejection) = await verifier.verify([current, fleetCA]) { throw .refused("\(rejection)") }
        guard PossessionProof.verify(proof, csrPEM: csrPEM, by: current) else { throw .badProof }
        // From here on the request is the holder's of `current`: its relay serves that leaf, and
        // a refusal is that relay's failed renewal (`cox relays list`). Before, anyone holding a
        // copy of the leaf could have sent it.
        let serial = current.serialHex
        do {
            return try await renewRelayLeaf(current: current, csrPEM: csrPEM, fleetCA: fleetCA)
        } catch {
            if error != .tooSoon {
                try? await store.write { tx in
                    if let relay = try tx.relayOwning(serial: serial) {
                        try tx.recordPresentedRelayLeaf(relay: relay.id, serial: serial)
                        try tx.recordRelayRenewal(relay: relay.id, outcome: "failed: \(error)")
                    }
                }
            }
            throw error
        }
    }

    private func renewRelayLeaf(current: Certificate, csrPEM: String, fleetCA: Certificate)
        async throws(RelayRenewalError) -> (chainPEM: String, leaf: Certificate) {
        let authority = pki.authority
        let key: Certificate.PublicKey
        do { key = try CertificateAuthority.verifiedKey(ofCSR: csrPEM) } catch { throw .unusableCSR("\(error)") }
        guard P256.Signing.PublicKey(key) != nil else { throw .unusableCSR("a relay key must be P-256") }
        guard key != current.publicKey else { throw .unusableCSR("the CSR is for the current key; a renewal needs a fresh one") }
        let serial = current.serialHex
        do {
            return try await store.write { tx in
                guard let relay = try tx.relayOwning(serial: serial), relay.kind == .remote else { throw RelayRenewalError.unknownLeaf(serial) }
                guard try !tx.isRevoked(serial: serial) else {
                    throw RelayRenewalError.revoked(serial)
                }
                let leaves = try tx.relayLeaves(relay: relay.id)
                guard let newest = leaves.first else { throw RelayRenewalError.unknownLeaf(serial) }
                try tx.recordPresentedRelayLeaf(relay: relay.id, serial: serial)
                if newest.serial != serial {
                    // A retry from the leaf before the newest: the newest again, if it is for this key.
                    guard leaves.count > 1, leaves[1].serial == serial, let issued = Certificate(firstIn: newest.certificatePEM),
                          issued.publicKey == key else { throw RelayRenewalError.superseded(serial) }
                    return (chainPEM: try issued.pemString() + fleetCA.pemString(), leaf: issued)
                }
                if tx.now - newest.issuedAt < Self.relayRenewalInterval { throw RelayRenewalError.tooSoon }
                for older in leaves.dropFirst() {
                    try tx.insertRevoked(RevokedCertificate(serial: older.serial, kind: .relay, name: relay.name, notBefore: older.notBefore,
                                                            notAfter: older.notAfter, revokedAt: tx.now, reason: "superseded"))
                }
                let days = try tx.relayCertificateDays(relay: relay.id)
                let leaf = try authority.issue(publicKey: key, profile: .relay(hostname: relay.hostname), validity: TimeInterval(days) * 86400)
                try tx.recordRelayLeaf(relay: relay.id, leaf: leaf)
                try tx.recordRelayRenewal(relay: relay.id, outcome: "renewed")
                try tx.appendAudit(AuditEntry(action: "relay.cert.renew", targetType: "relay", targetID: relay.id,
                                              detail: Self.detail(["serial": leaf.serialHex, "previous": serial])),
                                   by: AuditActor(name: relay.name, kind: .system))
                return (chainPEM: try leaf.pemString() + fleetCA.pemString(), leaf: leaf)
            }
        } catch let error as RelayRenewalError {
            throw error
        } catch {
            throw .refused("the controller could not issue it: \(error)")
        }
    }
}
