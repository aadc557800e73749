import GRDB

/// The controller's schema, as ordered migrations. Names and columns follow upstream's
/// (Goose 00001–00038); every editable row carries `version`, `created_at`, `updated_at`.
/// Times are integer microseconds since 1970 UTC.
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("0001_core", migrate: core)
        migrator.registerMigration("0002_accounts", migrate: accounts)
        migrator.registerMigration("0003_admin", migrate: admin)
        migrator.registerMigration("0004_lifecycle", migrate: lifecycle)
        migrator.registerMigration("0005_controller_leaves", migrate: controllerLeaves)
        migrator.registerMigration("0006_relay_leaves", migrate: relayLeaves)
        migrator.registerMigration("0007_relay_presented", migrate: relayPresented)
        migrator.registerMigration("0008_analytics", migrate: analytics)
        migrator.registerMigration("0009_paths", migrate: paths)
        migrator.registerMigration("0010_device_exits", migrate: deviceExits)
        migrator.registerMigration("0011_path_colors", migrate: pathColors)
        migrator.registerMigration("0012_ssh", migrate: ssh)
        return migrator
    }

    /// Cascades (#21): named paths of 2 or 3 hops (entry, optional mid, exit); one inner link
    /// per consecutive pair of hops, allocated once per (entry, exit) and shared by every path
    /// that makes the same hop; links no path uses any more wait in `retired_links` until
    /// their entry node has been told to remove them.
    private static func paths(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE paths (
                id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL);
            CREATE TABLE path_hops (
                path_id TEXT NOT NULL REFERENCES paths(id) ON DELETE CASCADE, hop_index INTEGER NOT NULL,
                node_id TEXT NOT NULL REFERENCES nodes(id) ON DELETE RESTRICT, PRIMARY KEY (path_id, hop_index));
            CREATE INDEX path_hops_by_node ON path_hops(node_id);
            CREATE TABLE node_links (
                id TEXT PRIMARY KEY,
                entry_node_id TEXT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
                exit_node_id TEXT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
                inner_interface TEXT NOT NULL, listen_port INTEGER NOT NULL, fwmark INTEGER NOT NULL,
                table_id INTEGER NOT NULL, created_at INTEGER NOT NULL,
                UNIQUE (entry_node_id, exit_node_id), UNIQUE (entry_node_id, inner_interface));
            CREATE TABLE retired_links (
                entry_node_id TEXT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE, inner_interface TEXT NOT NULL,
                PRIMARY KEY (entry_node_id, inner_interface));
            CREATE INDEX profile_specs_by_path ON profile_specs(path_id);
            """)
    }

    /// The live exit switch (#21): a device bound to a path leaves by that path's exit for the
    /// traffic it sends into the path's entry, whatever its profile there says; the device's
    /// keys and sealed profile stay as they are (no resync). One binding per device.
    private static func deviceExits(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE device_exits (
                device_id TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
                path_id TEXT NOT NULL REFERENCES paths(id) ON DELETE RESTRICT,
                created_at INTEGER NOT NULL);
            CREATE INDEX device_exits_by_path ON device_exits(path_id);
            """)
    }

    /// A path's color (`#rrggbb`, or empty): how operators tell paths apart at a glance.
    private static func pathColors(_ db: Database) throws {
        try db.execute(sql: "ALTER TABLE paths ADD COLUMN color TEXT NOT NULL DEFAULT ''")
    }

    /// SSH onboarding (#24): the controller's own SSH identity (upstream's `ssh_identity`), the
    /// host keys pinned at first use (`[host]:port` as OpenSSH's known_hosts names it), and
    /// the SSH login a node or relay was installed through, which `update|start|stop|rm` reuse.
    private static func ssh(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE ssh_identity (
                id INTEGER PRIMARY KEY CHECK (id = 1), private_key TEXT NOT NULL, public_key TEXT NOT NULL,
                created_at INTEGER NOT NULL);
            CREATE TABLE ssh_host_keys (
                host TEXT NOT NULL, key_type TEXT NOT NULL, public_key TEXT NOT NULL, pinned_at INTEGER NOT NULL,
                PRIMARY KEY (host, key_type));
            CREATE TABLE node_ssh (
                node_id TEXT PRIMARY KEY REFERENCES nodes(id) ON DELETE CASCADE,
                user TEXT NOT NULL, host TEXT NOT NULL, port INTEGER NOT NULL, package_version TEXT NOT NULL DEFAULT '',
                created_at INTEGER NOT NULL);
            CREATE TABLE relay_ssh (
                relay_id TEXT PRIMARY KEY REFERENCES relays(id) ON DELETE CASCADE,
                user TEXT NOT NULL, host TEXT NOT NULL, port INTEGER NOT NULL, package_version TEXT NOT NULL DEFAULT '',
                created_at INTEGER NOT NULL);
            """)
    }

    /// Certificate lifecycle (#20): the lifetime of each node's leaves and how its last renewal
    /// went; a device's renewed leaf until its first use (`pending_fingerprint`); the node,
    /// relay and controller leaves revoked before they expire (their rows outlive the node or
    /// relay they belonged to, until they expire).
    private static func lifecycle(_ db: Database) throws {
        try db.execute(sql: """
            ALTER TABLE nodes ADD COLUMN cert_days INTEGER NOT NULL DEFAULT 30;
            ALTER TABLE nodes ADD COLUMN cert_renewal TEXT NOT NULL DEFAULT '';
            ALTER TABLE devices ADD COLUMN pending_fingerprint TEXT;
            ALTER TABLE devices ADD COLUMN cert_renewed_at INTEGER;
            CREATE TABLE revoked_certs (
                serial TEXT PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('node', 'relay', 'controller')),
                name TEXT NOT NULL, not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,
                revoked_at INTEGER NOT NULL, reason TEXT NOT NULL DEFAULT '');
            """)
    }

    /// Every controller leaf issued, so `cox pki revoke-controller` revokes all still in date
    /// (the leaked one may have been renewed since), not only the current one.
    private static func controllerLeaves(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE controller_leaves (
                serial TEXT PRIMARY KEY, not_before INTEGER NOT NULL, not_after INTEGER NOT NULL, issued_at INTEGER NOT NULL);
            """)
    }

    /// Every leaf issued to a remote relay (enrolled or renewed over its tunnel), so the relay
    /// renewing is known by the leaf it presents, a retried renewal gets the same leaf back
    /// (`cert_pem`), and removing it revokes every one still in date; and the lifetime its
    /// renewals get. Relays enrolled before keep their 365-day leaf until it is renewed to
    /// `cert_days`.
    private static func relayLeaves(_ db: Database) throws {
        try db.execute(sql: """
            ALTER TABLE relays ADD COLUMN cert_days INTEGER NOT NULL DEFAULT 30;
            CREATE TABLE relay_leaves (
                serial TEXT PRIMARY KEY, relay_id TEXT NOT NULL, not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,
                issued_at INTEGER NOT NULL, cert_pem TEXT NOT NULL DEFAULT '');
            CREATE INDEX relay_leaves_relay ON relay_leaves (relay_id, issued_at);
            INSERT INTO relay_leaves (serial, relay_id, not_before, not_after, issued_at)
                SELECT cert_serial, id, cert_not_after - 365 * 86400 * 1000000, cert_not_after, created_at
                FROM relays WHERE cert_serial != '';
            """)
    }

    /// A leaf issued to a relay is not yet a leaf it serves (#20): the one each relay was last
    /// seen presenting, since when, and how its last renewal went.
    private static func relayPresented(_ db: Database) throws {
        try db.execute(sql: """
            ALTER TABLE relays ADD COLUMN presented_serial TEXT NOT NULL DEFAULT '';
            ALTER TABLE relays ADD COLUMN presented_at INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE relays ADD COLUMN cert_renewal TEXT NOT NULL DEFAULT '';
            """)
    }

    /// The Tier 2 anomaly rules (#23): each device's newest activity and, on every connect, the
    /// one before it (`dormant_then_active` must see a gap longer than connection history is
    /// kept); the peers of removed devices, so a key still working after its removal is known
    /// as that device's (`revoked_profile_active`); the countries each device was seen in
    /// (`new_geo`).
    private static func analytics(_ db: Database) throws {
        try db.execute(sql: """
            ALTER TABLE devices ADD COLUMN last_seen_at INTEGER;
            UPDATE devices SET last_seen_at = (SELECT MAX(at) FROM connection_events WHERE device_id = devices.id);
            ALTER TABLE connection_events ADD COLUMN previous_seen_at INTEGER;
            CREATE TABLE removed_peers (
                peer_id TEXT PRIMARY KEY, node_id TEXT NOT NULL, device_id TEXT NOT NULL, user_id TEXT,
                removed_at INTEGER NOT NULL);
            CREATE INDEX removed_peers_by_device ON removed_peers(device_id);
            CREATE INDEX connection_events_by_type ON connection_events(event_type, device_id, at);
            CREATE TABLE device_countries (
                device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE, country TEXT NOT NULL,
                first_seen_at INTEGER NOT NULL, PRIMARY KEY (device_id, country));
            """)
    }

    /// The account service behind the relay tier: sessions bound to the device that opened
    /// them, the relay a ticket was issued for, remote relays' certificates, and the
    /// fingerprints of revoked device certificates (the relays' deny list) until they expire.
    private static func accounts(_ db: Database) throws {
        try db.execute(sql: """
            ALTER TABLE sessions ADD COLUMN device_id TEXT REFERENCES devices(id) ON DELETE CASCADE;
            ALTER TABLE enrollment_tickets ADD COLUMN relay_addr TEXT NOT NULL DEFAULT '';
            ALTER TABLE relays ADD COLUMN public_addr TEXT NOT NULL DEFAULT '';
            ALTER TABLE relays ADD COLUMN cert_serial TEXT NOT NULL DEFAULT '';
            ALTER TABLE relays ADD COLUMN cert_not_after INTEGER NOT NULL DEFAULT 0;
            CREATE TABLE revoked_device_certs (
                fingerprint TEXT PRIMARY KEY, device_id TEXT NOT NULL,
                not_after INTEGER NOT NULL, revoked_at INTEGER NOT NULL);
            CREATE INDEX sessions_by_expiry ON sessions(expires_at);
            """)
    }

    /// The admin API and UI: login sessions of admins (the `cox_session` cookie, 12 h), and
    /// the indexes its lists and filters page through.
    private static func admin(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE admin_sessions (
                id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                token_hash TEXT NOT NULL UNIQUE, source_ip TEXT NOT NULL DEFAULT '',
                expires_at INTEGER NOT NULL, created_at INTEGER NOT NULL);
            CREATE INDEX admin_sessions_by_expiry ON admin_sessions(expires_at);
            CREATE INDEX audit_by_action ON audit_log(action, at);
            CREATE INDEX audit_by_actor ON audit_log(actor, at);
            CREATE INDEX connection_events_by_node ON connection_events(node_id, at);
            CREATE INDEX connection_events_by_peer ON connection_events(node_id, peer_id, at);
            CREATE INDEX api_tokens_by_name ON api_tokens(name);
            """)
    }

    private static func core(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE ca (
                role TEXT PRIMARY KEY CHECK (role IN ('root', 'fleet', 'device')),
                cert_pem TEXT NOT NULL, key_pem TEXT NOT NULL, serial TEXT NOT NULL,
                not_before INTEGER NOT NULL, not_after INTEGER NOT NULL);
            CREATE TABLE controller_cert (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                cert_pem TEXT NOT NULL, key_pem TEXT NOT NULL, not_after INTEGER NOT NULL);
            CREATE TABLE profile_signing_key (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                private_key BLOB NOT NULL, public_key BLOB NOT NULL, created_at INTEGER NOT NULL);
            CREATE TABLE nodes (
                id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, region TEXT NOT NULL DEFAULT '',
                public_ip TEXT NOT NULL DEFAULT '', control_addr TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending','provisioning','active','stopped','unreachable','error')),
                agent_version TEXT NOT NULL DEFAULT '',
                forwarding INTEGER NOT NULL DEFAULT 1, masquerade INTEGER NOT NULL DEFAULT 1,
                isolation INTEGER NOT NULL DEFAULT 0,
                wg_public_key TEXT, wg_obfuscation TEXT, xray_public_key TEXT,
                endpoint_ips TEXT NOT NULL DEFAULT '',
                wg_port INTEGER NOT NULL DEFAULT 443,
                config_revision INTEGER NOT NULL DEFAULT 0,
                applied_revision INTEGER NOT NULL DEFAULT 0,
                missed_polls INTEGER NOT NULL DEFAULT 0,
                last_seen_at INTEGER, last_error TEXT NOT NULL DEFAULT '',
                version INTEGER NOT NULL DEFAULT 1,
                created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
            CREATE TABLE node_certs (
                id TEXT PRIMARY KEY, node_id TEXT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
                serial TEXT NOT NULL UNIQUE, cert_pem TEXT NOT NULL, not_after INTEGER NOT NULL,
                revoked_at INTEGER, created_at INTEGER NOT NULL);
            CREATE TABLE relays (
                id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                kind TEXT NOT NULL CHECK (kind IN ('embedded','remote')),
                endpoint TEXT NOT NULL DEFAULT '', hostname TEXT NOT NULL DEFAULT '',
                status TEXT NOT NULL DEFAULT 'pending', region TEXT NOT NULL DEFAULT '',
                agent_version TEXT NOT NULL DEFAULT '',
                version INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
            CREATE TABLE users (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE, phone TEXT UNIQUE,
                role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user','admin')),
                public_key BLOB, wrapped_privkey BLOB, status TEXT NOT NULL DEFAULT 'active',
                password_hash TEXT,
                version INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
            CREATE TABLE devices (
                id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                name TEXT NOT NULL, platform TEXT NOT NULL DEFAULT '', fingerprint TEXT,
                status TEXT NOT NULL DEFAULT 'active', encryption_pubkey BLOB,
                tunnel_ip TEXT NOT NULL UNIQUE,
                version INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
                UNIQUE (user_id, name));
            CREATE TABLE device_certs (
                id TEXT PRIMARY KEY, device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
                serial TEXT NOT NULL UNIQUE, cert_pem TEXT NOT NULL, not_after INTEGER NOT NULL,
                revoked_at INTEGER, created_at INTEGER NOT NULL);
            CREATE TABLE profile_specs (
                id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                device_id TEXT REFERENCES devices(id) ON DELETE CASCADE,
                name TEXT NOT NULL, path_id TEXT, node_id TEXT REFERENCES nodes(id) ON DELETE CASCADE,
                entry_ips TEXT NOT NULL DEFAULT '',
                protocol TEXT NOT NULL CHECK (protocol IN ('amneziawg','xray-reality','both')),
                version INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
                CHECK ((path_id IS NULL) != (node_id IS NULL)),
                UNIQUE (user_id, name));
            CREATE TABLE peers (
                id TEXT PRIMARY KEY, node_id TEXT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
                device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
                protocol TEXT NOT NULL CHECK (protocol IN ('amneziawg','xray-reality')),
                public_key TEXT NOT NULL, allowed_ip TEXT NOT NULL, preshared_key TEXT NOT NULL DEFAULT '',
                flow TEXT NOT NULL DEFAULT '',
                profile_spec_id TEXT REFERENCES profile_specs(id) ON DELETE CASCADE,
                created_at INTEGER NOT NULL,
                UNIQUE (node_id, protocol, public_key));
            CREATE INDEX peers_by_node ON peers(node_id);
            CREATE INDEX peers_by_device ON peers(device_id);
            CREATE TABLE profiles (
                id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                device_id TEXT UNIQUE REFERENCES devices(id) ON DELETE CASCADE,
                revision INTEGER NOT NULL, ciphertext BLOB NOT NULL,
                version INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
            CREATE TABLE enrollment_tickets (
                id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                token_hash TEXT NOT NULL UNIQUE, expires_at INTEGER NOT NULL,
                used_at INTEGER, used_by_device_id TEXT, created_at INTEGER NOT NULL);
            CREATE TABLE sessions (
                id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                token_hash TEXT NOT NULL UNIQUE, expires_at INTEGER NOT NULL, created_at INTEGER NOT NULL);
            CREATE TABLE api_tokens (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, scope TEXT NOT NULL
                    CHECK (scope IN ('readonly','monitor','admin')),
                token_hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL, created_by TEXT NOT NULL,
                expires_at INTEGER, last_used_at INTEGER, revoked_at INTEGER, created_at INTEGER NOT NULL);
            CREATE TABLE audit_log (
                id TEXT PRIMARY KEY, at INTEGER NOT NULL, actor TEXT NOT NULL, actor_kind TEXT NOT NULL,
                action TEXT NOT NULL, target_type TEXT NOT NULL, target_id TEXT NOT NULL,
                source_ip TEXT NOT NULL, detail TEXT NOT NULL, result TEXT NOT NULL, error TEXT NOT NULL,
                prev_hash TEXT NOT NULL, row_hash TEXT NOT NULL);
            CREATE INDEX audit_by_time ON audit_log(at, id);
            CREATE TABLE connection_events (
                id TEXT PRIMARY KEY, at INTEGER NOT NULL, node_id TEXT NOT NULL, peer_id TEXT NOT NULL,
                device_id TEXT, user_id TEXT, protocol TEXT NOT NULL,
                event_type TEXT NOT NULL CHECK (event_type IN ('connect','disconnect','handshake')),
                source_ip TEXT NOT NULL DEFAULT '', source_endpoint TEXT NOT NULL DEFAULT '',
                rx_bytes INTEGER NOT NULL DEFAULT 0, tx_bytes INTEGER NOT NULL DEFAULT 0,
                reason TEXT NOT NULL DEFAULT '');
            CREATE INDEX connection_events_by_time ON connection_events(at);
            CREATE INDEX connection_events_by_device ON connection_events(device_id, at);
            CREATE TABLE alerts (
                id TEXT PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL,
                severity TEXT NOT NULL CHECK (severity IN ('info','warning','critical')),
                device_id TEXT, user_id TEXT, node_id TEXT, source_ips TEXT NOT NULL DEFAULT '[]',
                detail TEXT NOT NULL DEFAULT '{}',
                status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open','acknowledged','resolved')),
                dedup_key TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 1,
                created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
            CREATE UNIQUE INDEX alerts_one_open ON alerts(dedup_key) WHERE status != 'resolved';
            """)
    }
}
