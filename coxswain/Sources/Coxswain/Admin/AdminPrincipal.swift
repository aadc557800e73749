import Crypto
import Foundation
import PharosSpec

/// Who is calling the admin API or UI, once `AdminService` has checked the cookie or token.
public struct AdminPrincipal: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A logged-in admin (`cox_session` cookie); mutations must carry `csrfToken`.
        case session(userID: String, csrfToken: String)
        case token(id: String)
    }

    /// The admin's e-mail, or `token:<name>`.
    public var name: String
    public var kind: Kind
    public var scope: TokenScope

    /// The audit actor of a mutation this principal makes from `sourceIP` (the socket's).
    public func actor(sourceIP: String) -> AuditActor {
        switch kind {
        case .session: AuditActor(name: name, kind: .session, sourceIP: sourceIP)
        case .token: AuditActor(name: name, kind: .token, sourceIP: sourceIP)
        }
    }

    public var csrfToken: String? {
        if case .session(_, let csrf) = kind { return csrf }
        return nil
    }

    /// The CSRF token of a session: derived from the session secret (never stored), so the
    /// server can check it without state and a page from another origin cannot know it.
    static func csrfToken(forSession secret: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array("pharos-csrf-v1".utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return Base64.hex(Array(mac))
    }
}
