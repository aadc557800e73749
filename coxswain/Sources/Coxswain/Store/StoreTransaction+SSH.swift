import Foundation

/// The controller's SSH identity: an OpenSSH private key (its own format, as `ssh -i` reads
/// it) and the `authorized_keys` line for it.
public struct SSHIdentity: Sendable, Equatable {
    public var privateKey: String
    public var publicKey: String
    public var createdAt: Int64

    /// `SHA256:…` of the public key, as `ssh-keygen -l` prints it.
    public var fingerprint: String {
        let fields = publicKey.split(separator: " ")
        return fields.count >= 2 ? SSHOutput.fingerprint(String(fields[1])) : "?"
    }
}

/// A host key pinned at first use. `host` is the name OpenSSH's known_hosts gives it:
/// `HOST` on port 22, `[HOST]:PORT` elsewhere.
public struct PinnedHostKey: Sendable, Equatable {
    public var host: String
    public var keyType: String
    public var publicKey: String
    public var pinnedAt: Int64

    /// The known_hosts line OpenSSH checks against.
    public var knownHostsLine: String { "\(host) \(keyType) \(publicKey)" }

    /// `SHA256:…`, as `ssh-keygen -lf` prints it.
    public var fingerprint: String { SSHOutput.fingerprint(publicKey) }
}

/// The SSH login an agent (a node or a relay) was installed through.
public struct AgentSSHRecord: Sendable, Equatable {
    public var agentID: String
    public var target: SSHTarget
    public var packageVersion: String
}

extension StoreTransaction {
    public func sshIdentity() throws -> SSHIdentity? {
        try sql.row("SELECT * FROM ssh_identity WHERE id = 1").map {
            SSHIdentity(privateKey: $0["private_key"], publicKey: $0["public_key"], createdAt: $0["created_at"])
        }
    }

    /// Stores the identity unless one exists (two `cox ssh-key` at once keep the first) and
    /// returns the one stored, and whether it is this one.
    public func storeSSHIdentity(privateKey: String, publicKey: String) throws -> (SSHIdentity, created: Bool) {
        let created = try sql.execute("""
            INSERT INTO ssh_identity (id, private_key, public_key, created_at) VALUES (1, ?, ?, ?)
            ON CONFLICT (id) DO NOTHING
            """, [privateKey, publicKey, now]) > 0
        guard let identity = try sshIdentity() else { throw StoreError.notFound(kind: "ssh identity", id: "1") }
        return (identity, created)
    }

    public func pinnedHostKeys(host: String? = nil) throws -> [PinnedHostKey] {
        let rows = if let host {
            try sql.rows("SELECT * FROM ssh_host_keys WHERE host = ? ORDER BY key_type", [host])
        } else {
            try sql.rows("SELECT * FROM ssh_host_keys ORDER BY host, key_type")
        }
        return rows.map { PinnedHostKey(host: $0["host"], keyType: $0["key_type"], publicKey: $0["public_key"], pinnedAt: $0["pinned_at"]) }
    }

    /// Pins a key the first time a host is met and returns the pin stored: an existing pin is
    /// never replaced here (only `forgetHostKeys` removes one), so the caller compares.
    public func pinHostKey(host: String, keyType: String, publicKey: String) throws -> PinnedHostKey {
        try sql.execute("""
            INSERT INTO ssh_host_keys (host, key_type, public_key, pinned_at) VALUES (?, ?, ?, ?)
            ON CONFLICT (host, key_type) DO NOTHING
            """, [host, keyType, publicKey, now])
        guard let stored = try pinnedHostKeys(host: host).first(where: { $0.keyType == keyType }) else {
            throw StoreError.notFound(kind: "ssh host key", id: host)
        }
        return stored
    }

    /// Returns how many pins were removed.
    @discardableResult
    public func forgetHostKeys(host: String) throws -> Int {
        try sql.execute("DELETE FROM ssh_host_keys WHERE host = ?", [host])
    }

    public func agentSSH(_ kind: AgentKind, id: String) throws -> AgentSSHRecord? {
        try sql.row("SELECT * FROM \(kind.sshTable) WHERE \(kind.sshKey) = ?", [id]).map {
            AgentSSHRecord(agentID: $0[kind.sshKey], target: SSHTarget(user: $0["user"], host: $0["host"], port: $0["port"]),
                           packageVersion: $0["package_version"])
        }
    }

    public func setAgentSSH(_ kind: AgentKind, id: String, target: SSHTarget, packageVersion: String) throws {
        // `user` is a reserved word in PostgreSQL: quoted (both engines read "user" as the column).
        try sql.execute("""
            INSERT INTO \(kind.sshTable) (\(kind.sshKey), "user", host, port, package_version, created_at) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (\(kind.sshKey)) DO UPDATE SET "user" = excluded."user", host = excluded.host, port = excluded.port,
                package_version = excluded.package_version
            """, [id, target.user, target.host, target.port, packageVersion, now])
    }
}
