import Crypto
import Foundation
import PharosSpec
import PharosTLS
import X509

/// The account plane behind the relay tier (`pharos.account.v1.AccountSync`) as plain
/// methods: join-link invites and claims, certificate and password logins, account keys and
/// the sealed profile. Every change is one store transaction with its audit row; the nodes it
/// touches are pushed after commit by the fleet service's effects.
public final class AccountService: Sendable {
    public static let ticketLifetime: Int64 = 24 * 3600 * 1_000_000
    public static let sessionLifetime: Int64 = 12 * 3600 * 1_000_000
    /// Devices renew their leaf during sync once two thirds of it have passed
    /// (`renewDeviceCertificate`); one that does not sync for a month enrolls again.
    public static let deviceCertificateValidity: TimeInterval = 30 * 86400
    /// A device renews at most once in this many microseconds (an hour).
    static let deviceRenewalInterval: Int64 = 3_600_000_000

    public let fleet: FleetService
    /// Password logins per account (e-mail as typed, known or not) and per device certificate.
    let accountLogins = LoginThrottle(limit: 10, window: .seconds(900))
    let deviceLogins = LoginThrottle(limit: 20, window: .seconds(900))

    let passwords: PasswordGate

    public init(fleet: FleetService, passwords: PasswordGate = .shared) {
        self.fleet = fleet
        self.passwords = passwords
    }

    var store: Store { fleet.store }
    var pki: FleetPKI { fleet.pki }
    var config: CoxConfig { fleet.config }

    // MARK: invites

    public struct Invite: Sendable {
        public var link: JoinLink
        public var ticketID: String
        public var userID: String
        public var expiresAt: Date
    }

    /// `cox enroll <user>`: a one-time ticket for the relay at `relay` (default
    /// `relay.public_endpoint`), valid 24 h. Only its SHA-256 is stored.
    public func invite(user reference: String, relay: String? = nil, by actor: AuditActor) async throws -> Invite {
        let requested = (relay ?? config.relayPublicEndpoint).trimmingCharacters(in: .whitespaces)
        guard !requested.isEmpty else {
            throw AccountError.failedPrecondition(
                "no relay address for the join link: set relay.public_endpoint in cox.yaml or pass --relay HOST:PORT")
        }
        let relayAddr = try FleetService.address(requested, defaultPort: PharosPorts.relayClient, flag: "relay").description
        let token = AccountSecrets.newToken(), tokenHash = AccountSecrets.hash(token)
        let caFingerprint = Fingerprint.caRoot(der: try pki.authority.root.certificate.derBytes())
        let (ticketID, userID, expiresAt) = try await store.write { tx in
            let user = try tx.user(reference)
            let expiresAt = tx.now + Self.ticketLifetime
            let ticketID = try tx.insertTicket(userID: user.id, tokenHash: tokenHash, relayAddr: relayAddr, expiresAt: expiresAt)
            try tx.appendAudit(AuditEntry(action: "enroll.invite", targetType: "user", targetID: user.id,
                                          detail: FleetService.detail(["ticket": ticketID, "relay": relayAddr])), by: actor)
            return (ticketID, user.id, expiresAt)
        }
        return Invite(link: JoinLink(relay: relayAddr, token: token, caFingerprint: caFingerprint), ticketID: ticketID,
                      userID: userID, expiresAt: StoreClock.date(expiresAt))
    }

    // MARK: claim

    public struct Claim: Sendable {
        public var token: String
        public var csrPEM: String
        public var deviceName: String
        public var platform: String
        public var encryptionKey: [UInt8]

        public init(token: String, csrPEM: String, deviceName: String, platform: String, encryptionKey: [UInt8]) {
            self.token = token
            self.csrPEM = csrPEM
            self.deviceName = deviceName
            self.platform = platform
            self.encryptionKey = encryptionKey
        }
    }

    public struct Claimed: Sendable {
        public var device: DeviceRecord
        public var certificatePEM: String
        public var fleetCAPEM: String
        public var relayAddr: String
        public var relayServerName: String
        public var caFingerprint: String
        public var signingPublicKey: [UInt8]
        /// The root's signature over `signingPublicKey` (`SigningKeyEndorsement`).
        public var signingKeyEndorsement: [UInt8]
    }

    /// ClaimEnrollment. The request is checked before the ticket is looked at, so a bad CSR or
    /// key says so without revealing anything about the ticket; every ticket failure is the
    /// same opaque `unauthenticated`. An unknown, used or expired ticket costs a read and
    /// nothing else: no CA signature, no audit row (a flood of guesses cannot fill the log).
    /// Redeeming the ticket, recording the device and its certificate, provisioning and sealing
    /// its bundle, and the audit row are one transaction.
    public func claim(_ claim: Claim, sourceIP: String = "") async throws -> Claimed {
        guard claim.encryptionKey.count == 32 else {
            throw AccountError.invalidArgument("encryption_pubkey must be an X25519 public key of exactly 32 bytes, got \(claim.encryptionKey.count)")
        }
        let name = String(claim.deviceName.trimmingCharacters(in: .whitespacesAndNewlines).prefix(64))
        guard !name.isEmpty else { throw AccountError.invalidArgument("device_name is empty") }
        guard !claim.token.isEmpty, claim.token.utf8.count <= 128 else { throw AccountError.opaqueClaimFailure }
        let deviceKey: Certificate.PublicKey
        do { deviceKey = try CertificateAuthority.verifiedKey(ofCSR: claim.csrPEM) } catch {
            throw AccountError.invalidArgument("csr_pem is not usable: \(error)")
        }
        let tokenHash = AccountSecrets.hash(claim.token)
        guard try await store.read({ tx in try tx.ticketIsRedeemable(tokenHash: tokenHash) }) else {
            throw AccountError.opaqueClaimFailure
        }
        let deviceID = EntityID.make(.device)
        let leaf: Certificate
        do {
            leaf = try pki.authority.issue(publicKey: deviceKey, profile: .device(id: deviceID), validity: Self.deviceCertificateValidity)
        } catch {
            throw AccountError.invalidArgument("csr_pem is not usable: \(error)")
        }
        let certificatePEM = try leaf.pemString()
        let (config, subnet, fleetID, signingKey) = (config, fleet.subnet, try pki.authority.fingerprint, pki.signingKey)
        let platform = String(claim.platform.prefix(32)), encryptionKey = Data(claim.encryptionKey)
        let outcome: (MutationResult<DeviceRecord>, String)?
        outcome = try await store.write { tx in
            guard let ticket = try tx.redeemTicket(tokenHash: tokenHash, deviceID: deviceID) else {
                try tx.appendAudit(AuditEntry(action: "enroll.claim", targetType: "device", targetID: deviceID,
                                              detail: FleetService.detail(["name": name]), result: "denied",
                                              error: "unknown, used or expired ticket"),
                                   by: AuditActor(name: "anonymous", kind: .session, sourceIP: sourceIP))
                return nil
            }
            let user = try tx.user(ticket.userID)
            let result = try Self.insertCertifiedDevice(
                CertifiedDevice(id: deviceID, name: name, platform: platform, leaf: leaf, certificatePEM: certificatePEM,
                                encryptionKey: encryptionKey),
                user: user, action: "enroll.claim", by: AuditActor(name: user.email ?? user.id, kind: .session, sourceIP: sourceIP),
                tx: tx, config: config, subnet: subnet, fleetID: fleetID, signingKey: signingKey)
            return (result, ticket.relayAddr)
        }
        guard let (result, relayAddr) = outcome else { throw AccountError.opaqueClaimFailure }
        _ = await fleet.committed(result)
        let signingPublicKey = Array(pki.signingKey.publicKey.rawRepresentation)
        return Claimed(device: result.value, certificatePEM: certificatePEM,
                       fleetCAPEM: try pki.authority.fleet.certificate.pemString(), relayAddr: relayAddr,
                       relayServerName: try await relayServerName(for: relayAddr),
                       caFingerprint: Fingerprint.caRoot(der: try pki.authority.root.certificate.derBytes()),
                       signingPublicKey: signingPublicKey,
                       signingKeyEndorsement: try SigningKeyEndorsement.sign(signingPublicKey, rootKey: pki.authority.root.key))
    }

    /// A device with its first certificate, as ClaimEnrollment and `cox devices issue` record it.
    struct CertifiedDevice {
        var id: String
        var name: String
        var platform: String
        var leaf: Certificate
        var certificatePEM: String
        var encryptionKey: Data?
    }

    /// Records `device` for `user` (a free tunnel address, a name unique for the user, its
    /// certificate), provisions it on the user's nodes and writes the audit row, in `tx`.
    static func insertCertifiedDevice(_ certified: CertifiedDevice, user: UserRecord, action: String, by actor: AuditActor,
                                      tx: StoreTransaction, config: CoxConfig, subnet: IPv4Subnet, fleetID: String,
                                      signingKey: Curve25519.Signing.PrivateKey) throws -> MutationResult<DeviceRecord> {
        guard let address = subnet.firstFree(excluding: try tx.usedTunnelIPs()) else {
            throw ProvisioningError.subnetExhausted(subnet.description)
        }
        let existing = Set(try tx.devices(user: user.id).map(\.name))
        var unique = certified.name, n = 2
        while existing.contains(unique) { unique = "\(certified.name)-\(n)"; n += 1 }
        let fingerprint = Fingerprint.certificate(der: try certified.leaf.derBytes())
        let device = DeviceRecord(id: certified.id, userID: user.id, name: unique, platform: certified.platform,
                                  fingerprint: fingerprint, status: .active, encryptionPubkey: certified.encryptionKey,
                                  tunnelIP: address, version: 1, createdAt: tx.now, updatedAt: tx.now)
        try tx.insert(device)
        try tx.insertDeviceCertificate(deviceID: device.id, serial: certified.leaf.serialHex, certificatePEM: certified.certificatePEM,
                                       notAfter: FleetPKI.micros(certified.leaf.notValidAfter))
        var affected = try FleetService.reprovision(deviceID: device.id, tx: tx, config: config, fleetID: fleetID, signingKey: signingKey)
        affected = try tx.bumpRevisions(affected)
        try tx.appendAudit(AuditEntry(action: action, targetType: "device", targetID: device.id,
                                      detail: FleetService.detail(["user": user.id, "name": unique, "platform": certified.platform,
                                                                   "fingerprint": fingerprint, "tunnel_ip": address])), by: actor)
        return MutationResult(value: device, affectedNodes: affected)
    }

    // MARK: legacy identities

    public struct Issued: Sendable {
        public var device: DeviceRecord
        /// The `.pharosid` to hand over out of band: it holds the device's private key.
        public var identity: DeviceIdentity
        public var pushes: [String: FleetReconciler.Outcome]
    }

    /// `cox devices issue` (upstream's legacy path, reference §5.6): the controller makes the
    /// device's P-256 key itself, issues its 30-day leaf, records and provisions the device
    /// without a key of its own (its bundle is sealed to the user's account key, which the
    /// device enrolls on its first sync), and returns the `.pharosid`. The private key is in
    /// that answer only; nothing keeps it.
    public func issueDevice(user reference: String, name rawName: String, platform: String = "", relay: String? = nil,
                            serverName: String? = nil, by actor: AuditActor) async throws -> Issued {
        let name = String(rawName.trimmingCharacters(in: .whitespacesAndNewlines).prefix(64))
        guard !name.isEmpty else { throw AccountError.invalidArgument("the device name is empty") }
        let requested = (relay ?? config.relayPublicEndpoint).trimmingCharacters(in: .whitespaces)
        guard !requested.isEmpty else {
            throw AccountError.failedPrecondition(
                "no relay address for the device identity: set relay.public_endpoint in cox.yaml or pass --relay HOST:PORT")
        }
        let relayAddr = try FleetService.address(requested, defaultPort: PharosPorts.relayClient, flag: "relay").description
        // Everything that can fail is done before the device is committed.
        var relayName = serverName?.trimmingCharacters(in: .whitespaces) ?? ""
        if relayName.isEmpty { relayName = try await relayServerName(for: relayAddr) }
        let caFingerprint = Fingerprint.caRoot(der: try pki.authority.root.certificate.derBytes())
        let fleetCAPEM = try pki.authority.fleet.certificate.pemString()
        let key = P256.Signing.PrivateKey()
        let deviceID = EntityID.make(.device)
        let leaf = try pki.authority.issue(publicKey: Certificate.PublicKey(key.publicKey), profile: .device(id: deviceID),
                                           validity: Self.deviceCertificateValidity)
        let certificatePEM = try leaf.pemString()
        let (config, subnet, fleetID, signingKey) = (config, fleet.subnet, try pki.authority.fingerprint, pki.signingKey)
        let platform = String(platform.prefix(32))
        let (result, user) = try await store.write { tx in
            let user = try tx.user(reference)
            let result = try Self.insertCertifiedDevice(
                CertifiedDevice(id: deviceID, name: name, platform: platform, leaf: leaf, certificatePEM: certificatePEM,
                                encryptionKey: nil),
                user: user, action: "device.issue", by: actor, tx: tx, config: config, subnet: subnet, fleetID: fleetID,
                signingKey: signingKey)
            return (result, user)
        }
        let committed = await fleet.committed(result)
        let identity = DeviceIdentity(
            user: user.email ?? "", alias: committed.value.name, relayAddress: relayAddr, relayServerName: relayName,
            caFingerprint: caFingerprint, fleetCA: fleetCAPEM, deviceCertificate: certificatePEM,
            deviceKey: key.pemRepresentation, signingPublicKey: Array(signingKey.publicKey.rawRepresentation))
        return Issued(device: committed.value, identity: identity, pushes: committed.pushes)
    }

    /// The TLS name of the relay at `address`: an enrolled relay's hostname when its public
    /// address matches, else the embedded relay's.
    func relayServerName(for address: String) async throws -> String {
        let relays = try await store.read { tx in try tx.relays() }
        if let relay = relays.first(where: { $0.publicAddr == address }) { return relay.hostname }
        return RelayTier.embeddedHostname(config)
    }

    /// `cox users passwd`: the Argon2id hash of `password` for the legacy e-mail login.
    public func setPassword(user reference: String, password: String, by actor: AuditActor) async throws -> UserRecord {
        guard password.count >= 8 else { throw AccountError.invalidArgument("a password needs at least 8 characters") }
        let hash = try PasswordHash.make(password: password)
        return try await store.write { tx in
            let user = try tx.user(reference)
            try tx.setPasswordHash(user: user.id, hash: hash)
            try tx.appendAudit(AuditEntry(action: "user.password", targetType: "user", targetID: user.id), by: actor)
            return user
        }
    }

    // MARK: sessions

    public struct Session: Sendable, Equatable {
        public var token: String
        public var userID: String
        public var deviceID: String?
        public var keysEnrolled: Bool
    }

    /// Authenticate. Empty `email`: certificate login with the fingerprint the relay injected
    /// (the caller's verified Device-CA leaf); else the legacy password login. Any failure is
    /// the same `unauthenticated`.
    public func authenticate(email: String, password: String, deviceFingerprint: String?) async throws -> Session {
        let token = AccountSecrets.newToken(), tokenHash = AccountSecrets.hash(token)
        if email.isEmpty {
            guard let fingerprint = deviceFingerprint else {
                throw AccountError.unauthenticated("no device certificate reached the controller; connect through a relay with this device's certificate")
            }
            let session: Session? = try await store.write { tx in
                guard let device = try tx.deviceUsing(fingerprint: fingerprint), device.status == .active else { return nil }
                let user = try tx.user(device.userID)
                guard user.status == .active else { return nil }
                try tx.insertSession(userID: user.id, deviceID: device.id, tokenHash: tokenHash, expiresAt: tx.now + Self.sessionLifetime)
                return Session(token: token, userID: user.id, deviceID: device.id,
                               keysEnrolled: device.encryptionPubkey != nil || user.publicKey != nil)
            }
            guard let session else { throw AccountError.opaqueLoginFailure }
            return session
        }
        let email = String(email.trimmingCharacters(in: .whitespaces).lowercased().prefix(254))
        // Throttled per account and per device before any hashing; both are counted in one
        // step with the check, so parallel guesses get no more checks than the budget.
        let device = deviceFingerprint ?? "none"
        // The device first: one already over its budget cannot spend a victim's account budget.
        if let wait = deviceLogins.attempt(device) ?? accountLogins.attempt(email) {
            throw AccountError.tooManyAttempts(retryAfterSeconds: Int(wait.components.seconds) + 1)
        }
        let user = try await store.read { tx in try? tx.user(email) }
        let matches: Bool
        do {
            matches = try await passwords.verify(password: password, against: user?.passwordHash ?? PasswordGate.decoyHash)
        } catch {
            // No password was checked: the attempt is given back.
            accountLogins.giveBack(email)
            deviceLogins.giveBack(device)
            throw AccountError.tooManyAttempts(retryAfterSeconds: 1)
        }
        guard let user, user.status == .active, user.passwordHash != nil, matches else {
            throw AccountError.opaqueLoginFailure
        }
        // Only the account's count starts over: a device that logs in to its own account
        // between guesses at others must not reset its own budget.
        accountLogins.succeeded(email)
        deviceLogins.giveBack(device)
        // Through a relay with this user's device certificate, the session is that device's:
        // its GetProfile is its own bundle, not the newest keyless device's.
        let session: Session = try await store.write { tx in
            var bound: DeviceRecord?
            if let deviceFingerprint, let device = try tx.deviceUsing(fingerprint: deviceFingerprint),
               device.userID == user.id, device.status == .active {
                bound = device
            }
            try tx.insertSession(userID: user.id, deviceID: bound?.id, tokenHash: tokenHash, expiresAt: tx.now + Self.sessionLifetime)
            return Session(token: token, userID: user.id, deviceID: bound?.id,
                           keysEnrolled: user.publicKey != nil || bound?.encryptionPubkey != nil)
        }
        return session
    }

    /// RenewDeviceCertificate: a leaf for the CSR's fresh key, for the device whose current
    /// certificate made the call (the fingerprint the relay injected); at most one an hour per
    /// device unless the last one was never used (when to renew is the device's decision: at
    /// two thirds of its leaf's life). The
    /// current leaf stays valid until the new one is first used (`deviceUsing`).
    public func renewDeviceCertificate(csrPEM: String, deviceFingerprint: String?, now: Date = Date()) async throws -> Certificate {
        guard let fingerprint = deviceFingerprint else {
            throw AccountError.unauthenticated("no device certificate reached the controller; connect through a relay with this device's certificate")
        }
        let key: Certificate.PublicKey
        do { key = try CertificateAuthority.verifiedKey(ofCSR: csrPEM) } catch {
            throw AccountError.invalidArgument("csr_pem is not usable: \(error)")
        }
        let authority = pki.authority
        let leaf: Certificate? = try await store.write { tx in
            guard let device = try tx.deviceUsing(fingerprint: fingerprint), device.status == .active,
                  try tx.user(device.userID).status == .active else { return nil }
            // Once an hour, unless the last leaf was never used: its answer was lost on the way
            // (a relay tunnel redialed mid-call), and the device must not wait an hour for it
            // with a leaf in its last third. The unused leaf is revoked when it is replaced.
            if try tx.pendingFingerprint(device: device.id) == nil,
               let last = try tx.deviceCertificateRenewedAt(device: device.id), FleetPKI.micros(now) - last < Self.deviceRenewalInterval {
                throw AccountError.failedPrecondition("this device renewed its certificate less than an hour ago; try again later")
            }
            let leaf = try authority.issue(publicKey: key, profile: .device(id: device.id), validity: Self.deviceCertificateValidity, now: now)
            let issued = try tx.recordRenewedDeviceCertificate(device: device.id, leaf: leaf)
            try tx.appendAudit(AuditEntry(action: "device.cert.renew", targetType: "device", targetID: device.id,
                                          detail: FleetService.detail(["serial": leaf.serialHex, "fingerprint": issued,
                                                                       "previous": fingerprint])),
                               by: AuditActor(name: device.userID, kind: .session))
            return leaf
        }
        guard let leaf else { throw AccountError.opaqueLoginFailure }
        return leaf
    }

    /// GetDeniedRelays: the serials of relay leaves revoked before they expire (removed
    /// relays', superseded ones), signed by the profile-signing key over the device's nonce,
    /// for a device the controller knows (the certificate the relay injected is its current
    /// one, active).
    public func deniedRelays(nonce: [UInt8], deviceFingerprint: String?, now: Date = Date()) async throws -> DeniedRelayList.Signed {
        guard let fingerprint = deviceFingerprint else {
            throw AccountError.unauthenticated("no device certificate reached the controller; connect through a relay with this device's certificate")
        }
        guard DeniedRelayList.nonceLengths.contains(nonce.count) else {
            throw AccountError.invalidArgument("nonce must be 16–64 bytes, got \(nonce.count)")
        }
        let serials: [String]? = try await store.read { tx in
            guard let device = try tx.device(fingerprint: fingerprint), device.status == .active else { return nil }
            return try tx.revokedCertificates(kind: .relay).map(\.serial)
        }
        guard let serials else { throw AccountError.opaqueLoginFailure }
        return try DeniedRelayList(fleetID: try pki.authority.fingerprint, issuedAtMilliseconds: Int64(now.timeIntervalSince1970 * 1000),
                                   nonce: nonce, serials: Array(serials.prefix(DeniedRelayList.maximumSerials))).signed(with: pki.signingKey)
    }

    /// The live session behind a `pharos-session` token. A session a certificate opened is
    /// bound to that certificate: presented through a relay without it, it is refused.
    public func session(token: String?, deviceFingerprint: String?) async throws -> Session {
        guard let token, !token.isEmpty else {
            throw AccountError.unauthenticated("missing pharos-session metadata; call Authenticate first")
        }
        let tokenHash = AccountSecrets.hash(token)
        let session: Session? = try await store.read { tx in
            guard let row = try tx.session(tokenHash: tokenHash) else { return nil }
            let user = try tx.user(row.userID)
            var keys = user.publicKey != nil
            if let deviceID = row.deviceID {
                let device = try tx.device(deviceID)
                guard device.fingerprint == deviceFingerprint, device.status == .active else { return nil }
                keys = keys || device.encryptionPubkey != nil
            }
            return Session(token: token, userID: row.userID, deviceID: row.deviceID, keysEnrolled: keys)
        }
        guard let session else { throw AccountError.unauthenticated("session expired or revoked; authenticate again") }
        return session
    }

    // MARK: keys and profile

    /// EnrollKeys: the user's account X25519 key and its passphrase-wrapped private half. Every
    /// device of the user without its own key is re-provisioned so its bundle is sealed to it.
    /// A key is enrolled once: a session (a stolen password, a lost device) cannot swap in a key
    /// of its own and read every later profile. Enrolling the same key again is a no-op; a
    /// different one is refused until an operator clears the old (`cox users reset-keys`).
    public func enrollKeys(session: Session, publicKey: [UInt8], wrappedPrivateKey: [UInt8]) async throws {
        guard publicKey.count == 32 else {
            throw AccountError.invalidArgument("public_key must be an X25519 public key of exactly 32 bytes, got \(publicKey.count)")
        }
        guard !wrappedPrivateKey.isEmpty, wrappedPrivateKey.count <= 4096,
              (try? WrappedPrivateKey(jsonBytes: wrappedPrivateKey)) != nil else {
            throw AccountError.invalidArgument("wrapped_private_key is not a passphrase-wrapped key blob ({v, salt, n, ct})")
        }
        let (config, fleetID, signingKey) = (config, try pki.authority.fingerprint, pki.signingKey)
        let userID = session.userID
        let affected = try await store.write { tx -> Set<String> in
            if let current = try tx.user(userID).publicKey {
                guard current != Data(publicKey) else { return [] }
                throw AccountError.failedPrecondition(
                    "this account already has a key; it is not replaced from a session (an operator can clear it with `cox users reset-keys`)")
            }
            try tx.setAccountKeys(user: userID, publicKey: Data(publicKey), wrappedPrivateKey: Data(wrappedPrivateKey))
            var affected = Set<String>()
            for device in try tx.devices(user: userID) where device.encryptionPubkey == nil {
                affected.formUnion(try FleetService.reprovision(deviceID: device.id, tx: tx, config: config, fleetID: fleetID,
                                                                signingKey: signingKey))
            }
            affected = try tx.bumpRevisions(affected)
            try tx.appendAudit(AuditEntry(action: "user.keys", targetType: "user", targetID: userID),
                               by: AuditActor(name: userID, kind: .session))
            return affected
        }
        _ = await fleet.committed(MutationResult(value: userID, affectedNodes: affected))
    }

    public struct Profile: Sendable {
        public var ciphertext: Data
        public var revision: Int64
        public var signingPublicKey: [UInt8]
        /// The passphrase-wrapped account key, for devices without a key of their own.
        public var wrappedPrivateKey: Data
    }

    /// GetProfile: the sealed bundle of the session's device (for a password session, of the
    /// user's newest device sealed to the account key).
    public func profile(session: Session) async throws -> Profile {
        let (userID, deviceID) = (session.userID, session.deviceID)
        let found: (ProfileRecord, Data?)? = try await store.read { tx in
            let user = try tx.user(userID)
            if let deviceID {
                let device = try tx.device(deviceID)
                guard let profile = try tx.profile(device: deviceID) else { return nil }
                return (profile, device.encryptionPubkey == nil ? user.wrappedPrivkey : nil)
            }
            for device in try tx.devices(user: userID).reversed() where device.encryptionPubkey == nil {
                if let profile = try tx.profile(device: device.id) { return (profile, user.wrappedPrivkey) }
            }
            return nil
        }
        guard let (profile, wrapped) = found else {
            throw AccountError.notFound("no profile has been sealed for this device yet; the operator must give its user a profile (cox profiles create)")
        }
        return Profile(ciphertext: profile.ciphertext, revision: profile.revision,
                       signingPublicKey: Array(pki.signingKey.publicKey.rawRepresentation), wrappedPrivateKey: wrapped ?? Data())
    }
}
