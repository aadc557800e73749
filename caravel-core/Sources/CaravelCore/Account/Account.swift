import Crypto
import Foundation
import GRPCCore
import PharosProto
import PharosSpec
import PharosTLS
import X509

/// Enrollment with a join link and sync of the account's sealed profile, against the store.
public struct Account: Sendable {
    public let store: ProfileStore

    public init(store: ProfileStore) { self.store = store }

    public struct SyncResult: Sendable, Equatable {
        public var name: String
        public var revision: Int64
        public var previousRevision: Int64?
        public var profiles: Int
    }

    public enum Enrolled: Sendable, Equatable {
        case synced(SyncResult)
        /// Enrolled, but the controller has no profile for this device yet.
        case noProfileYet(name: String)
    }

    /// `caravel enroll '<link>'`: a fresh P-256 key and CSR plus a separate X25519
    /// encryption key; ClaimEnrollment through the link's relay without a client certificate,
    /// sent only after the relay's chain validated up to the root the link pins (a server
    /// that cannot show it never sees the token); the returned CA fingerprint must equal the
    /// link's and the returned Fleet CA must be the one in that validated chain. Then the
    /// identity is stored and synced at once.
    public func enroll(link text: String, deviceName: String, platform: String = "linux") async throws(CaravelError) -> Enrolled {
        let link: JoinLink
        do { link = try JoinLink(parsing: text) } catch { throw .format(error, file: "join link") }
        if let existing = try store.identity() {
            throw .alreadyExists("this store is already enrolled as \(existing.name); `caravel logout` first to enroll again")
        }
        let key = P256.Signing.PrivateKey()
        let encryptionKey = Curve25519.KeyAgreement.PrivateKey()
        var request = Pharos_Account_V1_ClaimEnrollmentRequest()
        request.token = link.token
        request.deviceName = deviceName
        request.platform = platform
        request.encryptionPubkey = encryptionKey.publicKey.rawRepresentation
        do {
            let csr = try CertificateSigningRequest(
                version: .v1, subject: try DistinguishedName { CommonName(deviceName) }, privateKey: Certificate.PrivateKey(key),
                attributes: CertificateSigningRequest.Attributes(), signatureAlgorithm: .ecdsaWithSHA256)
            request.csrPem = Data(try csr.serializeAsPEM().pemString.utf8)
        } catch {
            throw .io("cannot build the certificate request: \(error)")
        }

        let captured = RelayConnection.CapturedChain()
        let response: Pharos_Account_V1_ClaimEnrollmentResponse
        do {
            response = try await RelayConnection.withEnrollmentClient(relay: link.relay, rootFingerprint: link.caFingerprint,
                                                                      captured: captured) { client in
                try await client.claimEnrollment(request, options: RelayConnection.options)
            }
        } catch {
            if let rejection = captured.rejection.withLock({ $0 }) {
                throw .untrusted("the relay \(link.relay) is not part of the fleet this join link names (\(rejection)): possible interception; the join token was not sent")
            }
            let translated = RelayConnection.translate(error, relay: link.relay)
            if case .refused = translated {
                throw .refused("the join link was refused (used, expired or revoked); ask your administrator for a new one")
            }
            throw translated
        }

        guard link.matchesCA(response.caFingerprint) else {
            throw .untrusted("the controller answered for fleet \(response.caFingerprint), but the link names \(link.caFingerprint): possible interception, nothing was stored")
        }
        let fleetPEM = String(decoding: response.fleetCaPem, as: UTF8.self)
        try Self.checkFleetCA(fleetPEM, against: captured.verified.withLock { $0 })
        let signing = Array(response.signingPublicKey)
        try Self.checkSigningKey(signing, endorsement: Array(response.signingKeyEndorsement), against: captured.verified.withLock { $0 })

        let relayAddress = response.relayAddr.isEmpty ? link.relay : response.relayAddr
        let identity = DeviceIdentity(
            alias: deviceName, relayAddress: relayAddress, relayServerName: response.relayServerName,
            caFingerprint: response.caFingerprint, fleetCA: fleetPEM,
            deviceCertificate: String(decoding: response.deviceCertPem, as: UTF8.self),
            deviceKey: key.pemRepresentation, signingPublicKey: signing, encryptionKey: encryptionKey)
        let name = ProfileStore.sanitized(deviceName)
        try store.saveIdentity(identity, name: name)
        do {
            return .synced(try await sync())
        } catch .notFound {
            return .noProfileYet(name: name)
        }
    }

    /// The Fleet CA the controller returned must be the one that issued the relay leaf in the
    /// chain validated up to the pinned root (leaf, Fleet CA, root): a relay or an interceptor
    /// cannot slip in a CA of its own for the device to trust later.
    static func checkFleetCA(_ fleetCAPEM: String, against chain: [Certificate]) throws(CaravelError) {
        let returned: Certificate
        do {
            guard let first = try PEM.decodeAll(type: "CERTIFICATE", from: fleetCAPEM).map({ try Certificate(derEncoded: $0) }).first else {
                throw CaravelError.untrusted("the controller returned no Fleet CA")
            }
            returned = first
        } catch let error as CaravelError {
            throw error
        } catch {
            throw .untrusted("the controller's Fleet CA does not parse: \(error)")
        }
        guard chain.count >= 3, chain[1] == returned else {
            throw .untrusted("the Fleet CA the controller returned is not the one that issued the relay's certificate: possible interception, nothing was stored")
        }
    }

    /// The profile-signing key must carry the pinned root's signature: every profile this
    /// device opens is checked against it, so a key a relay or an interceptor put in the
    /// answer would let them forge profiles. A controller that sends no endorsement (upstream)
    /// is refused too: the key could not be told from a forged one.
    static func checkSigningKey(_ key: [UInt8], endorsement: [UInt8], against chain: [Certificate]) throws(CaravelError) {
        guard key.count == 32 else { throw .untrusted("the controller's profile-signing key is not an Ed25519 key") }
        guard let root = chain.last, chain.count >= 3 else { throw .untrusted("the relay's chain was not validated") }
        guard !endorsement.isEmpty else {
            throw .untrusted("the controller did not certify its profile-signing key with the fleet root (an older or foreign controller): nothing was stored")
        }
        guard SigningKeyEndorsement.isValid(endorsement, of: key, by: root) else {
            throw .untrusted("the profile-signing key in the answer is not certified by the fleet root the link names: possible interception, nothing was stored")
        }
    }

    /// What a sync may need besides the device certificate. The account password (an e-mail
    /// login) and the account passphrase (the key the account's profiles are sealed to) are
    /// separate secrets: the relay and the controller see the password, and must not be able
    /// to unwrap the account key they also hold. (Upstream used one secret for both; type it
    /// twice for an account it enrolled.)
    public struct Credentials: Sendable {
        /// Log in with this e-mail and `password` instead of the device certificate.
        public var email: String?
        public var password: [UInt8]?
        /// Opens the account key, or wraps a new one on the account's first sync; needed by a
        /// device without a key of its own.
        public var passphrase: [UInt8]?
        /// Asked before a new account key is enrolled; must repeat `passphrase` (a typo would
        /// lock the account key until an operator resets it). nil: not asked.
        public var confirmNewPassphrase: (@Sendable () -> [UInt8]?)?
        /// Accept the profile-signing key the first answer carries when the identity names
        /// none (an upstream `.pharosid` may not): trust on first use, which a hostile relay on
        /// that first sync could abuse.
        public var trustFirstSigningKey = false
        /// Let a `.pharosid` of another fleet or user replace the stored account.
        public var replaceAccount = false

        public init(email: String? = nil, password: [UInt8]? = nil, passphrase: [UInt8]? = nil,
                    confirmNewPassphrase: (@Sendable () -> [UInt8]?)? = nil, trustFirstSigningKey: Bool = false,
                    replaceAccount: Bool = false) {
            self.email = email
            self.password = password
            self.passphrase = passphrase
            self.confirmNewPassphrase = confirmNewPassphrase
            self.trustFirstSigningKey = trustFirstSigningKey
            self.replaceAccount = replaceAccount
        }
    }

    /// `caravel sync`: Authenticate with the stored device certificate (or an e-mail and the
    /// account password), GetProfile, verify the signature with the key pinned at enrollment,
    /// open with the device key (or the account key the passphrase unwraps), and replace every
    /// cloud profile at once. A revision older than the stored one is refused.
    public func sync(_ credentials: Credentials = Credentials()) async throws(CaravelError) -> SyncResult {
        guard let (name, stored) = try store.identity() else {
            throw .notFound("this device is not enrolled: run `caravel enroll '<join link>'`, or `caravel sync FILE.pharosid` with the identity your administrator issued")
        }
        return try await sync(identity: stored, name: name, previous: (try? store.entry(name))?.bundle.revision, credentials)
    }

    /// `sync` with only the account passphrase (a device without a key of its own).
    public func sync(passphrase: [UInt8]?) async throws(CaravelError) -> SyncResult {
        try await sync(Credentials(passphrase: passphrase))
    }

    /// `caravel sync FILE.pharosid` (upstream's legacy path, reference §5.6): the identity an
    /// administrator issued (`cox devices issue`) is checked (its key must belong to its
    /// certificate, which must be in date; fleet_ca must be a CA; it must name the
    /// profile-signing key unless `trustFirstSigningKey`), then synced as above; for a device
    /// without a key of its own the account key is enrolled on the account's first sync (a
    /// fresh X25519 key, wrapped with the passphrase). The store changes only when the sync
    /// succeeds, and then replaces the previous account (one at a time; one of another fleet
    /// or user only with `replaceAccount`).
    public func sync(identityFile path: String, as name: String? = nil, _ credentials: Credentials,
                     now: Date = Date()) async throws(CaravelError) -> SyncResult {
        let identity = try Self.checkedIdentity(file: path, now: now)
        if identity.signingPublicKey.isEmpty, !credentials.trustFirstSigningKey {
            throw .untrusted("\(path) names no profile-signing key (signing_public_key), so the first answer could carry anyone's: ask your administrator for an identity from `cox devices issue`, or accept the key the first sync sees with --trust-first-signing-key")
        }
        let fallback = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        let name = name ?? ProfileStore.sanitized(identity.alias.isEmpty ? (identity.user.isEmpty ? fallback : identity.user) : identity.alias)
        try ProfileStore.validate(name: name)
        let stored = try store.identity()
        if let (storedName, current) = stored, !credentials.replaceAccount,
           current.caFingerprint != identity.caFingerprint || (!current.user.isEmpty && !identity.user.isEmpty && current.user != identity.user) {
            throw .alreadyExists("this store holds the account \(current.user.isEmpty ? storedName : current.user) of another fleet or user; `caravel logout` first, or pass --replace")
        }
        var previous: Int64?
        if let entry = try? store.entry(name) {
            guard entry.isCloud || stored?.name == name else {
                throw .alreadyExists("an imported profile named \(name) exists; pass --name to store the synced one under another name")
            }
            if let (storedName, current) = stored, storedName == name, current.caFingerprint == identity.caFingerprint {
                previous = entry.bundle.revision
            }
        }
        return try await sync(identity: identity, name: name, previous: previous, credentials)
    }

    /// A `.pharosid` from outside the store, refused with a sentence for each way it can be
    /// wrong (what `sync(identityFile:)` checks first).
    public static func checkedIdentity(file path: String, now: Date = Date()) throws(CaravelError) -> DeviceIdentity {
        let identity: DeviceIdentity
        do { identity = try DeviceIdentity(jsonBytes: try ProfileStore.read(path)) } catch let error as PharosFormatError {
            throw .format(error, file: path)
        } catch let error as CaravelError {
            throw error
        } catch {
            throw .io("\(path): \(error)")
        }
        let leaf: Certificate, fleetCA: Certificate, key: P256.Signing.PrivateKey
        do { leaf = try Certificate(pemEncoded: identity.deviceCertificate) } catch {
            throw .format(.malformed(format: "device identity", reason: "device_cert is not a PEM certificate"), file: path)
        }
        do { key = try P256.Signing.PrivateKey(pemRepresentation: identity.deviceKey) } catch {
            throw .format(.malformed(format: "device identity", reason: "device_key is not a P-256 private key"), file: path)
        }
        do { fleetCA = try Certificate(pemEncoded: identity.fleetCA) } catch {
            throw .format(.malformed(format: "device identity", reason: "fleet_ca is not a PEM certificate"), file: path)
        }
        guard leaf.publicKey == Certificate.PublicKey(key.publicKey) else {
            throw .untrusted("\(path): device_key does not belong to device_cert (a damaged or tampered identity); ask your administrator for a new one")
        }
        // Who issued device_cert is the relay's to judge (the Device CA is not in the file);
        // fleet_ca must be a CA, as it becomes the root the relay's certificate is checked by.
        guard case .isCertificateAuthority = try? fleetCA.extensions.basicConstraints else {
            throw .untrusted("\(path): fleet_ca is not a CA certificate (a damaged or tampered identity); ask your administrator for a new one")
        }
        guard now >= leaf.notValidBefore else {
            throw .refused("\(path): the device certificate is not valid before \(rfc3339(leaf.notValidBefore)); is this device's clock right?")
        }
        guard now < leaf.notValidAfter else {
            throw .refused("\(path): the device certificate expired on \(rfc3339(leaf.notValidAfter)); ask your administrator for a new identity (cox devices issue)")
        }
        if let signing = identity.signingPublicKey.isEmpty ? nil : identity.signingPublicKey, signing.count != 32 {
            throw .format(.malformed(format: "device identity", reason: "signing_public_key is not an Ed25519 key"), file: path)
        }
        return identity
    }

    func sync(identity stored: DeviceIdentity, name: String, previous: Int64?,
              _ credentials: Credentials) async throws(CaravelError) -> SyncResult {
        var identity = stored
        let email = credentials.email?.trimmingCharacters(in: .whitespaces) ?? ""
        let passphrase = credentials.passphrase, hasOwnKey = identity.encryptionKey != nil
        if !email.isEmpty, credentials.password == nil {
            throw .refused("a login with --email needs the account password (on stdin with --password-stdin, or at the prompt)")
        }
        if !hasOwnKey, passphrase == nil {
            throw .refused("this device has no key of its own: give the account passphrase (on stdin with --password-stdin, or at the prompt)")
        }
        let confirm = credentials.confirmNewPassphrase
        let kept = try keptDeniedRelays(for: identity)
        let nonce = secureRandomBytes(32)
        let profile: Pharos_Account_V1_GetProfileResponse
        let enrolledKey: Curve25519.KeyAgreement.PrivateKey?
        let fetchedDenyList: Pharos_Lifecycle_V1_GetDeniedRelaysResponse?
        do {
            (profile, enrolledKey, fetchedDenyList) = try await RelayConnection.withDeviceConnection(
                identity: identity, deniedRelays: Set(kept?.list.serials ?? [])) { connection in
                let client = Pharos_Account_V1_AccountSync.Client(wrapping: connection)
                var login = Pharos_Account_V1_AuthenticateRequest()
                if !email.isEmpty, let password = credentials.password {
                    login.email = email
                    login.password = String(decoding: password, as: UTF8.self)
                }
                let session = try await client.authenticate(login, options: RelayConnection.options)
                let metadata: Metadata = [PharosIdentity.sessionMetadataKey: .string(session.sessionToken)]
                var enrolled: Curve25519.KeyAgreement.PrivateKey?
                if !session.keysEnrolled, !hasOwnKey, let passphrase {
                    if let confirm, confirm() != passphrase {
                        throw CaravelError.refused("the passphrases differ; no account key was enrolled")
                    }
                    let accountKey = Curve25519.KeyAgreement.PrivateKey()
                    var request = Pharos_Account_V1_EnrollKeysRequest()
                    request.publicKey = accountKey.publicKey.rawRepresentation
                    request.wrappedPrivateKey = Data(try WrappedPrivateKey.wrap(Array(accountKey.rawRepresentation),
                                                                                passphrase: passphrase).encoded())
                    _ = try await client.enrollKeys(request, metadata: metadata, options: RelayConnection.options)
                    enrolled = accountKey
                }
                let profile = try await client.getProfile(Pharos_Account_V1_GetProfileRequest(), metadata: metadata,
                                                          options: RelayConnection.options)
                var denyList: Pharos_Lifecycle_V1_GetDeniedRelaysResponse?
                do {
                    denyList = try await Pharos_Lifecycle_V1_DeviceLifecycle.Client(wrapping: connection)
                        .getDeniedRelays(.with { $0.nonce = Data(nonce) }, options: RelayConnection.options)
                } catch let error as RPCError where error.code == .unimplemented {
                    denyList = nil  // an older controller (or a relay saying so: see deniedRelaysToKeep)
                }
                return (profile, enrolled, denyList)
            }
        } catch {
            throw RelayConnection.translate(error, relay: identity.relayAddress)
        }
        if identity.signingPublicKey.isEmpty { identity.signingPublicKey = Array(profile.signingPublicKey) }
        guard Array(profile.signingPublicKey) == identity.signingPublicKey,
              let signingKey = try? Curve25519.Signing.PublicKey(rawRepresentation: identity.signingPublicKey) else {
            throw .untrusted("the controller now signs with a different key than at enrollment; nothing was replaced (enroll again if the controller was rebuilt)")
        }
        let recipient: Curve25519.KeyAgreement.PrivateKey
        var accountKey: WrappedPrivateKey?
        if let key = identity.encryptionKey {
            recipient = key
        } else {
            do {
                let wrapped = try WrappedPrivateKey(jsonBytes: Array(profile.wrappedPrivateKey))
                recipient = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: try wrapped.unwrap(passphrase: passphrase ?? []))
                accountKey = wrapped
            } catch {
                throw .refused("the account passphrase does not open the account key: \(error)")
            }
            if let enrolledKey, enrolledKey.publicKey.rawRepresentation != recipient.publicKey.rawRepresentation {
                throw .untrusted("the controller returned an account key other than the one this device just enrolled; nothing was stored")
            }
        }
        let bundle: ProfileBundle
        do {
            let sealed = try SealedBundle(jsonBytes: Array(profile.ciphertext))
            try ProfileStore.checkSigned(sealed, file: "profile from the controller")
            bundle = try ProfileBundle(jsonBytes: try sealed.open(with: recipient, signingPublicKey: signingKey))
        } catch let error as CaravelError {
            throw error
        } catch let error as PharosFormatError {
            if error == .signatureInvalid { throw .untrusted("the profile from the controller is not signed by its key; nothing was replaced") }
            throw .format(error, file: "profile from the controller")
        } catch {
            throw .io("\(error)")
        }
        if let previous, bundle.revision < previous {
            throw .untrusted("the controller offered revision \(bundle.revision), older than the stored \(previous); kept the stored profile")
        }
        let deniedRelays = try Self.deniedRelaysToKeep(fetchedDenyList, nonce: nonce, kept: kept?.signed, signingKey: identity.signingPublicKey,
                                                       fleetID: identity.caFingerprint.isEmpty ? bundle.fleetID : identity.caFingerprint)
        if identity.user.isEmpty { identity.user = bundle.user }
        let marker = SyncedMarker(user: bundle.user, revision: bundle.revision, relay: identity.relayAddress,
                                  controller: identity.caFingerprint, syncedAt: Self.rfc3339(Date()))
        try store.replaceCloud(name: name, bundle: bundle, identity: identity, marker: marker, accountKey: accountKey,
                               deniedRelays: deniedRelays)
        return SyncResult(name: name, revision: bundle.revision, previousRevision: previous, profiles: bundle.profiles.count)
    }

    /// The relay deny list kept with the stored account, when `identity` is that account's
    /// fleet and controller (same fleet, same profile-signing key, or none named yet), checked
    /// against the key the stored identity pinned. A list that does not verify stops the sync
    /// with a sentence: passing over it would let a revoked relay back in.
    func keptDeniedRelays(for identity: DeviceIdentity) throws(CaravelError) -> (signed: DeniedRelayList.Signed, list: DeniedRelayList)? {
        guard let (storedName, stored) = try store.identity(), !stored.signingPublicKey.isEmpty,
              stored.caFingerprint.lowercased() == identity.caFingerprint.lowercased(),
              identity.signingPublicKey.isEmpty || identity.signingPublicKey == stored.signingPublicKey else { return nil }
        let file = "\(store.directory)/\(storedName)\(DeniedRelayList.fileExtension)"
        do {
            guard let signed = try store.deniedRelays(storedName) else { return nil }
            return (signed, try signed.verified(signingKey: stored.signingPublicKey,
                                                fleetID: stored.caFingerprint.isEmpty ? nil : stored.caFingerprint))
        } catch {
            throw .untrusted("\(file) is not a relay deny list this account's controller signed (\(error)): a damaged or edited file; delete it and run `caravel sync` again to fetch a fresh one")
        }
    }

    /// What a sync keeps as the relay deny list: the controller's answer to this sync's nonce,
    /// once its signature, fleet and nonce check out (a replayed or forged one stops the sync).
    /// No answer (UNIMPLEMENTED) is an older controller's, taken only by a device that never
    /// had a list: after one, it is what a relay cut off from the controller would say.
    static func deniedRelaysToKeep(_ answer: Pharos_Lifecycle_V1_GetDeniedRelaysResponse?, nonce: [UInt8],
                                   kept: DeniedRelayList.Signed?, signingKey: [UInt8],
                                   fleetID: String) throws(CaravelError) -> DeniedRelayList.Signed? {
        guard let answer else {
            guard kept == nil else {
                throw .untrusted("the answer says the controller cannot give its relay deny list, though it gave this device one before: possible interception by a relay the controller no longer trusts; nothing was replaced")
            }
            return nil
        }
        let fetched = DeniedRelayList.Signed(payload: Array(answer.list), signature: Array(answer.signature))
        do { _ = try fetched.verified(signingKey: signingKey, fleetID: fleetID.isEmpty ? nil : fleetID, nonce: nonce) } catch {
            throw .untrusted("the relay deny list in the answer does not verify (\(error)); nothing was replaced")
        }
        return fetched
    }

    static func rfc3339(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
