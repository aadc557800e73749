import Foundation

/// Admin sessions (the `cox_session` cookie) and API tokens. Secrets are stored only as
/// SHA-256 hex.
extension StoreTransaction {
    // MARK: admin sessions

    public func insertAdminSession(userID: String, tokenHash: String, sourceIP: String, expiresAt: Int64) throws -> String {
        let id = EntityID.make(.session)
        try sql.execute("""
            INSERT INTO admin_sessions (id, user_id, token_hash, source_ip, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)
            """, [id, userID, tokenHash, sourceIP, expiresAt, now])
        return id
    }

    /// The live admin session with this token hash and its user, while the user is an active admin.
    public func adminSession(tokenHash: String) throws -> (id: String, user: UserRecord, expiresAt: Int64)? {
        guard let row = try sql.row("""
            SELECT id, user_id, expires_at FROM admin_sessions WHERE token_hash = ? AND expires_at > ?
            """, [tokenHash, now]) else { return nil }
        guard let user = try sql.find(UserRecord.self, key: row["user_id"] as String),
              user.role == .admin, user.status == .active else { return nil }
        return (row["id"], user, row["expires_at"])
    }

    @discardableResult
    public func deleteAdminSession(tokenHash: String) throws -> Bool {
        try sql.execute("DELETE FROM admin_sessions WHERE token_hash = ?", [tokenHash]) > 0
    }

    @discardableResult
    public func purgeExpiredAdminSessions() throws -> Int {
        try sql.execute("DELETE FROM admin_sessions WHERE expires_at <= ?", [now])
    }

    // MARK: API tokens

    public func insert(_ token: APITokenRecord) throws {
        if try sql.count("SELECT COUNT(*) FROM api_tokens WHERE name = ? AND revoked_at IS NULL", [token.name]) > 0 {
            throw StoreError.duplicate(kind: "API token", field: "name", value: token.name)
        }
        try sql.insert(token)
    }

    /// Newest first, revoked ones included (they say so).
    public func apiTokens() throws -> [APITokenRecord] {
        try sql.all(APITokenRecord.self, orderBy: "created_at DESC, id DESC")
    }

    /// By ID or name (a live token's name is unique).
    public func apiToken(_ reference: String) throws -> APITokenRecord {
        if let token = try sql.find(APITokenRecord.self, key: reference) { return token }
        if let token = try sql.first(APITokenRecord.self, where: "name = ? AND revoked_at IS NULL", [reference]) {
            return token
        }
        throw StoreError.notFound(kind: "API token", id: reference)
    }

    public func apiToken(hash: String) throws -> APITokenRecord? {
        try sql.first(APITokenRecord.self, where: "token_hash = ?", [hash])
    }

    public func revokeToken(_ id: String) throws {
        try sql.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [now, id])
    }

    /// Best-effort "last used" stamp; at most one write a minute per token.
    public func touchToken(_ id: String) throws {
        try sql.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
                        [now, id, now - 60_000_000])
    }
}

extension StoreTransaction {
    /// A disabled user: every account and admin session ends now.
    public func endSessions(user userID: String) throws {
        try sql.execute("DELETE FROM sessions WHERE user_id = ?", [userID])
        try endAdminSessions(user: userID)
    }

    public func endAdminSessions(user userID: String) throws {
        try sql.execute("DELETE FROM admin_sessions WHERE user_id = ?", [userID])
    }
}
