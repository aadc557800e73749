import Foundation
import GRDB

/// Admin sessions (the `cox_session` cookie) and API tokens. Secrets are stored only as
/// SHA-256 hex.
extension StoreTransaction {
    // MARK: admin sessions

    public func insertAdminSession(userID: String, tokenHash: String, sourceIP: String, expiresAt: Int64) throws -> String {
        let id = EntityID.make(.session)
        try db.execute(sql: """
            INSERT INTO admin_sessions (id, user_id, token_hash, source_ip, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)
            """, arguments: [id, userID, tokenHash, sourceIP, expiresAt, now])
        return id
    }

    /// The live admin session with this token hash and its user, while the user is an active admin.
    public func adminSession(tokenHash: String) throws -> (id: String, user: UserRecord, expiresAt: Int64)? {
        guard let row = try Row.fetchOne(db, sql: """
            SELECT id, user_id, expires_at FROM admin_sessions WHERE token_hash = ? AND expires_at > ?
            """, arguments: [tokenHash, now]) else { return nil }
        guard let user = try UserRecord.fetchOne(db, key: row["user_id"] as String),
              user.role == .admin, user.status == .active else { return nil }
        return (row["id"], user, row["expires_at"])
    }

    @discardableResult
    public func deleteAdminSession(tokenHash: String) throws -> Bool {
        try db.execute(sql: "DELETE FROM admin_sessions WHERE token_hash = ?", arguments: [tokenHash])
        return db.changesCount > 0
    }

    @discardableResult
    public func purgeExpiredAdminSessions() throws -> Int {
        try db.execute(sql: "DELETE FROM admin_sessions WHERE expires_at <= ?", arguments: [now])
        return db.changesCount
    }

    // MARK: API tokens

    public func insert(_ token: APITokenRecord) throws {
        if try APITokenRecord.filter(Column("name") == token.name && Column("revoked_at") == nil).fetchCount(db) > 0 {
            throw StoreError.duplicate(kind: "API token", field: "name", value: token.name)
        }
        try token.insert(db)
    }

    /// Newest first, revoked ones included (they say so).
    public func apiTokens() throws -> [APITokenRecord] {
        try APITokenRecord.order(Column("created_at").desc, Column("id").desc).fetchAll(db)
    }

    /// By ID or name (a live token's name is unique).
    public func apiToken(_ reference: String) throws -> APITokenRecord {
        if let token = try APITokenRecord.fetchOne(db, key: reference) { return token }
        if let token = try APITokenRecord.filter(Column("name") == reference && Column("revoked_at") == nil).fetchOne(db) {
            return token
        }
        throw StoreError.notFound(kind: "API token", id: reference)
    }

    public func apiToken(hash: String) throws -> APITokenRecord? {
        try APITokenRecord.filter(Column("token_hash") == hash).fetchOne(db)
    }

    public func revokeToken(_ id: String) throws {
        try db.execute(sql: "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", arguments: [now, id])
    }

    /// Best-effort "last used" stamp; at most one write a minute per token.
    public func touchToken(_ id: String) throws {
        try db.execute(sql: "UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
                       arguments: [now, id, now - 60_000_000])
    }
}

extension StoreTransaction {
    /// A disabled user: every account and admin session ends now.
    public func endSessions(user userID: String) throws {
        try db.execute(sql: "DELETE FROM sessions WHERE user_id = ?", arguments: [userID])
        try endAdminSessions(user: userID)
    }

    public func endAdminSessions(user userID: String) throws {
        try db.execute(sql: "DELETE FROM admin_sessions WHERE user_id = ?", arguments: [userID])
    }
}
