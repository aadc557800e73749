import Foundation
import PharosSpec

/// Admin authentication behind the API and UI, and the API tokens, on the same store and
/// audit chain as every other mutation.
/// - Login: an active user with role `admin` and an Argon2id password (`cox users add --admin`,
///   `cox users passwd`); failures are audited and throttled per source IP.
/// - Sessions: 12 h, the secret only in the `cox_session` cookie, its SHA-256 in the store.
/// - Tokens: `cox_<ro|mon|adm>_<43 base64url chars>`, shown once, stored as SHA-256 with a
///   12-character display prefix, optionally expiring, revocable.
public final class AdminService: Sendable {
    public static let sessionLifetime: Int64 = 12 * 3600 * 1_000_000

    public let fleet: FleetService
    public let throttle: LoginThrottle
    /// Failed logins per admin account, from any address.
    public let accountThrottle = LoginThrottle(limit: 10, window: .seconds(900))
    /// Compared against when the e-mail is unknown, so a miss costs what a wrong password
    /// costs (made once, at the first login attempt).

    let passwords: PasswordGate

    public init(fleet: FleetService, throttle: LoginThrottle = LoginThrottle(), passwords: PasswordGate = .shared) {
        self.fleet = fleet
        self.passwords = passwords
        self.throttle = throttle
    }

    var store: Store { fleet.store }

    // MARK: sessions

    public struct Login: Sendable {
        public var sessionToken: String
        public var csrfToken: String
        public var user: UserRecord
        public var expiresAt: Int64
    }

    public func login(email: String, password: String, sourceIP: String) async throws(AdminError) -> Login {
        let email = String(email.trimmingCharacters(in: .whitespaces).lowercased().prefix(254))
        // Checked and counted in one step, per address and per account, before any hashing.
        if let wait = throttle.attempt(sourceIP) ?? accountThrottle.attempt(email) {
            let seconds = Int((Double(wait.components.seconds) + 0.999).rounded(.down)) + 1
            await audit(.init(action: "auth.login", targetType: "admin", targetID: "", result: "error",
                              error: "too many failed logins"), name: email, sourceIP: sourceIP)
            throw .tooManyAttempts(retryAfterSeconds: seconds)
        }
        let user = try? await store.read { tx in try? tx.user(email) }
        // An unknown e-mail costs the same Argon2id check as a known one.
        let phc = user.flatMap { $0 }?.passwordHash ?? PasswordGate.decoyHash
        let passwordMatches: Bool
        do { passwordMatches = try await passwords.verify(password: password, against: phc) } catch {
            // No password was checked: the attempt is given back.
            throttle.giveBack(sourceIP)
            accountThrottle.giveBack(email)
            throw .tooManyAttempts(retryAfterSeconds: 1)
        }
        guard let candidate = user.flatMap({ $0 }), passwordMatches, candidate.passwordHash != nil,
              candidate.role == .admin, candidate.status == .active else {
            await audit(.init(action: "auth.login", targetType: "admin", targetID: "", result: "error",
                              error: "wrong e-mail or password, or not an admin"), name: email, sourceIP: sourceIP)
            throw .badCredentials
        }
        throttle.succeeded(sourceIP)
        accountThrottle.succeeded(email)
        let token = AccountSecrets.newToken(), tokenHash = AccountSecrets.hash(token)
        let expiresAt: Int64
        do {
            expiresAt = try await store.write { tx in
                let expiresAt = tx.now + Self.sessionLifetime
                _ = try tx.insertAdminSession(userID: candidate.id, tokenHash: tokenHash, sourceIP: sourceIP, expiresAt: expiresAt)
                try tx.appendAudit(AuditEntry(action: "auth.login", targetType: "admin", targetID: candidate.id),
                                   by: AuditActor(name: email, kind: .session, sourceIP: sourceIP))
                return expiresAt
            }
        } catch {
            throw .internalFailure("\(error)")
        }
        return Login(sessionToken: token, csrfToken: AdminPrincipal.csrfToken(forSession: token), user: candidate, expiresAt: expiresAt)
    }

    public func logout(sessionToken: String, principal: AdminPrincipal, sourceIP: String) async throws {
        let tokenHash = AccountSecrets.hash(sessionToken)
        try await store.write { tx in
            guard try tx.deleteAdminSession(tokenHash: tokenHash) else { return }
            try tx.appendAudit(AuditEntry(action: "auth.logout", targetType: "admin", targetID: ""),
                               by: principal.actor(sourceIP: sourceIP))
        }
    }

    /// The admin behind a `cox_session` cookie, or nil (unknown, expired, logged out, demoted).
    public func principal(sessionToken: String) async throws -> AdminPrincipal? {
        guard !sessionToken.isEmpty, sessionToken.utf8.count <= 128 else { return nil }
        let tokenHash = AccountSecrets.hash(sessionToken)
        guard let session = try await store.read({ tx in try tx.adminSession(tokenHash: tokenHash) }) else { return nil }
        return AdminPrincipal(name: session.user.email ?? session.user.id,
                              kind: .session(userID: session.user.id, csrfToken: AdminPrincipal.csrfToken(forSession: sessionToken)),
                              scope: .admin)
    }

    // MARK: tokens

    public enum TokenRefusal: Error, Equatable, CustomStringConvertible {
        case malformed, unknown, revoked, expired

        public var description: String {
            switch self {
            case .malformed: "the bearer token is not a cox API token (cox_<ro|mon|adm>_…)"
            case .unknown: "unknown API token"
            case .revoked: "this API token was revoked"
            case .expired: "this API token has expired; create a new one (cox tokens create)"
            }
        }
    }

    /// The principal of a bearer token, or why it is refused.
    public func principal(bearer secret: String) async throws -> Result<AdminPrincipal, TokenRefusal> {
        let parts = secret.split(separator: "_", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "cox", let tag = TokenScope.allCases.first(where: { $0.secretTag == parts[1] }),
              parts[2].utf8.count == 43 else { return .failure(.malformed) }
        let tokenHash = AccountSecrets.hash(secret)
        let found: APITokenRecord? = try await store.read { tx in try tx.apiToken(hash: tokenHash) }
        guard let token = found, token.scope == tag else { return .failure(.unknown) }
        if token.revokedAt != nil { return .failure(.revoked) }
        if let expiresAt = token.expiresAt, expiresAt <= StoreClock.now() { return .failure(.expired) }
        if token.lastUsedAt.map({ StoreClock.now() - $0 > 60_000_000 }) ?? true {
            _ = try? await store.write { tx in try tx.touchToken(token.id) }
        }
        return .success(AdminPrincipal(name: "token:\(token.name)", kind: .token(id: token.id), scope: token.scope))
    }

    public struct CreatedToken: Sendable {
        public var token: APITokenRecord
        /// Shown once; the store keeps only its hash.
        public var secret: String
    }

    public func createToken(name: String, scope: TokenScope, lifetime: Duration?, by actor: AuditActor) async throws -> CreatedToken {
        let name = name.trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty, name.count <= 64, !name.contains(where: \.isNewline) else {
            throw FleetInputError.badTokenName
        }
        if let lifetime, lifetime <= .zero { throw FleetInputError.nonPositiveTokenLifetime }
        let secret = "cox_\(scope.secretTag)_\(AccountSecrets.newToken())"
        let record = try await store.write { tx in
            let lifetimeMicros = lifetime.map { $0.components.seconds * 1_000_000 }
            let record = APITokenRecord(id: EntityID.make(.token), name: name, scope: scope, tokenHash: AccountSecrets.hash(secret),
                                        prefix: String(secret.prefix(12)), createdBy: actor.name,
                                        expiresAt: lifetimeMicros.map { tx.now + $0 }, lastUsedAt: nil, revokedAt: nil,
                                        createdAt: tx.now)
            try tx.insert(record)
            try tx.appendAudit(AuditEntry(action: "token.create", targetType: "token", targetID: record.id,
                                          detail: FleetService.detail(["name": name, "scope": scope.rawValue,
                                                                       "prefix": record.prefix])), by: actor)
            return record
        }
        return CreatedToken(token: record, secret: secret)
    }

    public func revokeToken(_ reference: String, by actor: AuditActor) async throws -> APITokenRecord {
        try await store.write { tx in
            var token = try tx.apiToken(reference)
            guard token.revokedAt == nil else { return token }
            try tx.revokeToken(token.id)
            token.revokedAt = tx.now
            try tx.appendAudit(AuditEntry(action: "token.revoke", targetType: "token", targetID: token.id,
                                          detail: FleetService.detail(["name": token.name])), by: actor)
            return token
        }
    }

    public func tokens() async throws -> [APITokenRecord] {
        try await store.read { tx in try tx.apiTokens() }
    }

    /// Audit rows of refusals (a failed login has no transaction of its own to ride in).
    private func audit(_ entry: AuditEntry, name: String, sourceIP: String) async {
        let actor = AuditActor(name: String(name.prefix(254)), kind: .session, sourceIP: sourceIP)
        _ = try? await store.write { tx in try tx.appendAudit(entry, by: actor) }
    }

    /// `30d`, `12h`, `90m`, `3600s`; nil for `never`.
    public static func parseLifetime(_ text: String) throws -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        if trimmed == "never" || trimmed.isEmpty { return nil }
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        guard let unit = trimmed.last, let factor = units[unit], let count = Int64(trimmed.dropLast()), count > 0,
              count <= 36500 * 86400 / factor else {
            throw FleetInputError.unreadableLifetime(text)
        }
        return .seconds(count * factor)
    }
}

public enum AdminError: Error, Equatable, CustomStringConvertible {
    case badCredentials
    case tooManyAttempts(retryAfterSeconds: Int)
    case internalFailure(String)

    public var description: String {
        switch self {
        case .badCredentials: "wrong e-mail or password"
        case .tooManyAttempts(let seconds): "too many failed logins; try again in \(seconds) s"
        case .internalFailure(let reason): "the login could not be recorded: \(reason)"
        }
    }
}
