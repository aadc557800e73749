import Foundation

/// The controller's schema on PostgreSQL (`store.backend: postgres`, #22). SQLite's history of
/// migrations (`Schema`) ends in the same tables as this baseline, with PostgreSQL's types:
/// `BIGINT` for every integer (microsecond times, 0/1 flags), `BYTEA` for blobs, and every
/// text column in byte order (`COLLATE "C"`, as SQLite compares) whatever the database's
/// locale, so IDs page and sort alike on both. A migration that changes tables is added to
/// both (`PostgresStoreTests` compares the columns of both engines); PostgreSQL alone has its
/// notification trigger.
enum PostgresSchema {
    /// Ordered (identifier, DDL); applied once each, recorded in `pharos_migrations`.
    static let migrations: [(identifier: String, sql: String)] = [
        ("0012_baseline", baseline),
        ("0013_node_notify", nodeNotify),
    ]

    /// The channel every controller's leader LISTENs on: a node's ID, sent at the commit of a
    /// transaction that added the node or moved its intended revision, whoever committed it
    /// (another controller, a `cox` command). Nothing is sent for a rolled-back change.
    static let nodeChannel = "pharos_nodes"

    private static let nodeNotify = """
        CREATE FUNCTION pharos_node_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('pharos_nodes', NEW.id);
            RETURN NULL;
        END $$;
        CREATE TRIGGER nodes_added AFTER INSERT ON nodes FOR EACH ROW EXECUTE FUNCTION pharos_node_changed();
        CREATE TRIGGER nodes_revised AFTER UPDATE OF config_revision ON nodes FOR EACH ROW
            WHEN (OLD.config_revision IS DISTINCT FROM NEW.config_revision) EXECUTE FUNCTION pharos_node_changed();
        """

    private static let baseline = """
            CREATE TABLE ca (
                role TEXT COLLATE "C" PRIMARY KEY CHECK (role IN ('root', 'fleet', 'device')),
                cert_pem TEXT COLLATE "C" NOT NULL, key_pem TEXT COLLATE "C" NOT NULL, serial TEXT COLLATE "C" NOT NULL,
                not_before BIGINT NOT NULL, not_after BIGINT NOT NULL);
            CREATE TABLE controller_cert (
                id BIGINT PRIMARY KEY CHECK (id = 1),
                cert_pem TEXT COLLATE "C" NOT NULL, key_pem TEXT COLLATE "C" NOT NULL, not_after BIGINT NOT NULL);
            CREATE TABLE profile_signing_key (
                id BIGINT PRIMARY KEY CHECK (id = 1),
                private_key BYTEA NOT NULL, public_key BYTEA NOT NULL, created_at BIGINT NOT NULL);
            CREATE TABLE nodes (
                id TEXT COLLATE "C" PRIMARY KEY, name TEXT COLLATE "C" NOT NULL UNIQUE, region TEXT COLLATE "C" NOT NULL DEFAULT '',
                public_ip TEXT COLLATE "C" NOT NULL DEFAULT '', control_addr TEXT COLLATE "C" NOT NULL,
                status TEXT COLLATE "C" NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending','provisioning','active','stopped','unreachable','error')),
                agent_version TEXT COLLATE "C" NOT NULL DEFAULT '',
                forwarding BIGINT NOT NULL DEFAULT 1, masquerade BIGINT NOT NULL DEFAULT 1,
                isolation BIGINT NOT NULL DEFAULT 0,
                wg_public_key TEXT COLLATE "C", wg_obfuscation TEXT COLLATE "C", xray_public_key TEXT COLLATE "C",
                endpoint_ips TEXT COLLATE "C" NOT NULL DEFAULT '',
                wg_port BIGINT NOT NULL DEFAULT 443,
                config_revision BIGINT NOT NULL DEFAULT 0,
                applied_revision BIGINT NOT NULL DEFAULT 0,
                missed_polls BIGINT NOT NULL DEFAULT 0,
                last_seen_at BIGINT, last_error TEXT COLLATE "C" NOT NULL DEFAULT '',
                version BIGINT NOT NULL DEFAULT 1,
                created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, cert_days BIGINT NOT NULL DEFAULT 30, cert_renewal TEXT COLLATE "C" NOT NULL DEFAULT '');
            CREATE TABLE node_certs (
                id TEXT COLLATE "C" PRIMARY KEY, node_id TEXT COLLATE "C" NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
                serial TEXT COLLATE "C" NOT NULL UNIQUE, cert_pem TEXT COLLATE "C" NOT NULL, not_after BIGINT NOT NULL,
                revoked_at BIGINT, created_at BIGINT NOT NULL);
            CREATE TABLE relays (
                id TEXT COLLATE "C" PRIMARY KEY, name TEXT COLLATE "C" NOT NULL UNIQUE,
                kind TEXT COLLATE "C" NOT NULL CHECK (kind IN ('embedded','remote')),
                endpoint TEXT COLLATE "C" NOT NULL DEFAULT '', hostname TEXT COLLATE "C" NOT NULL DEFAULT '',
                status TEXT COLLATE "C" NOT NULL DEFAULT 'pending', region TEXT COLLATE "C" NOT NULL DEFAULT '',
                agent_version TEXT COLLATE "C" NOT NULL DEFAULT '',
                version BIGINT NOT NULL DEFAULT 1, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, public_addr TEXT COLLATE "C" NOT NULL DEFAULT '', cert_serial TEXT COLLATE "C" NOT NULL DEFAULT '', cert_not_after BIGINT NOT NULL DEFAULT 0, cert_days BIGINT NOT NULL DEFAULT 30, presented_serial TEXT COLLATE "C" NOT NULL DEFAULT '', presented_at BIGINT NOT NULL DEFAULT 0, cert_renewal TEXT COLLATE "C" NOT NULL DEFAULT '');
            CREATE TABLE users (
                id TEXT COLLATE "C" PRIMARY KEY, name TEXT COLLATE "C" NOT NULL, email TEXT COLLATE "C" UNIQUE, phone TEXT COLLATE "C" UNIQUE,
                role TEXT COLLATE "C" NOT NULL DEFAULT 'user' CHECK (role IN ('user','admin')),
                public_key BYTEA, wrapped_privkey BYTEA, status TEXT COLLATE "C" NOT NULL DEFAULT 'active',
                password_hash TEXT COLLATE "C",
                version BIGINT NOT NULL DEFAULT 1, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
            CREATE TABLE devices (
                id TEXT COLLATE "C" PRIMARY KEY, user_id TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                name TEXT COLLATE "C" NOT NULL, platform TEXT COLLATE "C" NOT NULL DEFAULT '', fingerprint TEXT COLLATE "C",
                status TEXT COLLATE "C" NOT NULL DEFAULT 'active', encryption_pubkey BYTEA,
                tunnel_ip TEXT COLLATE "C" NOT NULL UNIQUE,
                version BIGINT NOT NULL DEFAULT 1, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, pending_fingerprint TEXT COLLATE "C", cert_renewed_at BIGINT, last_seen_at BIGINT,
                UNIQUE (user_id, name));
            CREATE TABLE device_certs (
                id TEXT COLLATE "C" PRIMARY KEY, device_id TEXT COLLATE "C" NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
                serial TEXT COLLATE "C" NOT NULL UNIQUE, cert_pem TEXT COLLATE "C" NOT NULL, not_after BIGINT NOT NULL,
                revoked_at BIGINT, created_at BIGINT NOT NULL);
            CREATE TABLE profile_specs (
                id TEXT COLLATE "C" PRIMARY KEY, user_id TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                device_id TEXT COLLATE "C" REFERENCES devices(id) ON DELETE CASCADE,
                name TEXT COLLATE "C" NOT NULL, path_id TEXT COLLATE "C", node_id TEXT COLLATE "C" REFERENCES nodes(id) ON DELETE CASCADE,
                entry_ips TEXT COLLATE "C" NOT NULL DEFAULT '',
                protocol TEXT COLLATE "C" NOT NULL CHECK (protocol IN ('amneziawg','xray-reality','both')),
                version BIGINT NOT NULL DEFAULT 1, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
                CHECK ((path_id IS NULL) != (node_id IS NULL)),
                UNIQUE (user_id, name));
            CREATE TABLE peers (
                id TEXT COLLATE "C" PRIMARY KEY, node_id TEXT COLLATE "C" NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
                device_id TEXT COLLATE "C" NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
                protocol TEXT COLLATE "C" NOT NULL CHECK (protocol IN ('amneziawg','xray-reality')),
                public_key TEXT COLLATE "C" NOT NULL, allowed_ip TEXT COLLATE "C" NOT NULL, preshared_key TEXT COLLATE "C" NOT NULL DEFAULT '',
                flow TEXT COLLATE "C" NOT NULL DEFAULT '',
                profile_spec_id TEXT COLLATE "C" REFERENCES profile_specs(id) ON DELETE CASCADE,
                created_at BIGINT NOT NULL,
                UNIQUE (node_id, protocol, public_key));
            CREATE TABLE profiles (
                id TEXT COLLATE "C" PRIMARY KEY, user_id TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                device_id TEXT COLLATE "C" UNIQUE REFERENCES devices(id) ON DELETE CASCADE,
                revision BIGINT NOT NULL, ciphertext BYTEA NOT NULL,
                version BIGINT NOT NULL DEFAULT 1, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
            CREATE TABLE enrollment_tickets (
                id TEXT COLLATE "C" PRIMARY KEY, user_id TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                token_hash TEXT COLLATE "C" NOT NULL UNIQUE, expires_at BIGINT NOT NULL,
                used_at BIGINT, used_by_device_id TEXT COLLATE "C", created_at BIGINT NOT NULL, relay_addr TEXT COLLATE "C" NOT NULL DEFAULT '');
            CREATE TABLE sessions (
                id TEXT COLLATE "C" PRIMARY KEY, user_id TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                token_hash TEXT COLLATE "C" NOT NULL UNIQUE, expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL, device_id TEXT COLLATE "C" REFERENCES devices(id) ON DELETE CASCADE);
            CREATE TABLE api_tokens (
                id TEXT COLLATE "C" PRIMARY KEY, name TEXT COLLATE "C" NOT NULL, scope TEXT COLLATE "C" NOT NULL
                CHECK (scope IN ('readonly','monitor','admin')),
                token_hash TEXT COLLATE "C" NOT NULL UNIQUE, prefix TEXT COLLATE "C" NOT NULL, created_by TEXT COLLATE "C" NOT NULL,
                expires_at BIGINT, last_used_at BIGINT, revoked_at BIGINT, created_at BIGINT NOT NULL);
            CREATE TABLE audit_log (
                id TEXT COLLATE "C" PRIMARY KEY, at BIGINT NOT NULL, actor TEXT COLLATE "C" NOT NULL, actor_kind TEXT COLLATE "C" NOT NULL,
                action TEXT COLLATE "C" NOT NULL, target_type TEXT COLLATE "C" NOT NULL, target_id TEXT COLLATE "C" NOT NULL,
                source_ip TEXT COLLATE "C" NOT NULL, detail TEXT COLLATE "C" NOT NULL, result TEXT COLLATE "C" NOT NULL, error TEXT COLLATE "C" NOT NULL,
                prev_hash TEXT COLLATE "C" NOT NULL, row_hash TEXT COLLATE "C" NOT NULL);
            CREATE TABLE connection_events (
                id TEXT COLLATE "C" PRIMARY KEY, at BIGINT NOT NULL, node_id TEXT COLLATE "C" NOT NULL, peer_id TEXT COLLATE "C" NOT NULL,
                device_id TEXT COLLATE "C", user_id TEXT COLLATE "C", protocol TEXT COLLATE "C" NOT NULL,
                event_type TEXT COLLATE "C" NOT NULL CHECK (event_type IN ('connect','disconnect','handshake')),
                source_ip TEXT COLLATE "C" NOT NULL DEFAULT '', source_endpoint TEXT COLLATE "C" NOT NULL DEFAULT '',
                rx_bytes BIGINT NOT NULL DEFAULT 0, tx_bytes BIGINT NOT NULL DEFAULT 0,
                reason TEXT COLLATE "C" NOT NULL DEFAULT '', previous_seen_at BIGINT);
            CREATE TABLE alerts (
                id TEXT COLLATE "C" PRIMARY KEY, at BIGINT NOT NULL, kind TEXT COLLATE "C" NOT NULL,
                severity TEXT COLLATE "C" NOT NULL CHECK (severity IN ('info','warning','critical')),
                device_id TEXT COLLATE "C", user_id TEXT COLLATE "C", node_id TEXT COLLATE "C", source_ips TEXT COLLATE "C" NOT NULL DEFAULT '[]',
                detail TEXT COLLATE "C" NOT NULL DEFAULT '{}',
                status TEXT COLLATE "C" NOT NULL DEFAULT 'open' CHECK (status IN ('open','acknowledged','resolved')),
                dedup_key TEXT COLLATE "C" NOT NULL, version BIGINT NOT NULL DEFAULT 1,
                created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
            CREATE TABLE revoked_device_certs (
                fingerprint TEXT COLLATE "C" PRIMARY KEY, device_id TEXT COLLATE "C" NOT NULL,
                not_after BIGINT NOT NULL, revoked_at BIGINT NOT NULL);
            CREATE TABLE admin_sessions (
                id TEXT COLLATE "C" PRIMARY KEY, user_id TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                token_hash TEXT COLLATE "C" NOT NULL UNIQUE, source_ip TEXT COLLATE "C" NOT NULL DEFAULT '',
                expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL);
            CREATE TABLE revoked_certs (
                serial TEXT COLLATE "C" PRIMARY KEY, kind TEXT COLLATE "C" NOT NULL CHECK (kind IN ('node', 'relay', 'controller')),
                name TEXT COLLATE "C" NOT NULL, not_before BIGINT NOT NULL, not_after BIGINT NOT NULL,
                revoked_at BIGINT NOT NULL, reason TEXT COLLATE "C" NOT NULL DEFAULT '');
            CREATE TABLE controller_leaves (
                serial TEXT COLLATE "C" PRIMARY KEY, not_before BIGINT NOT NULL, not_after BIGINT NOT NULL, issued_at BIGINT NOT NULL);
            CREATE TABLE relay_leaves (
                serial TEXT COLLATE "C" PRIMARY KEY, relay_id TEXT COLLATE "C" NOT NULL, not_before BIGINT NOT NULL, not_after BIGINT NOT NULL,
                issued_at BIGINT NOT NULL, cert_pem TEXT COLLATE "C" NOT NULL DEFAULT '');
            CREATE TABLE removed_peers (
                peer_id TEXT COLLATE "C" PRIMARY KEY, node_id TEXT COLLATE "C" NOT NULL, device_id TEXT COLLATE "C" NOT NULL, user_id TEXT COLLATE "C",
                removed_at BIGINT NOT NULL);
            CREATE TABLE device_countries (
                device_id TEXT COLLATE "C" NOT NULL REFERENCES devices(id) ON DELETE CASCADE, country TEXT COLLATE "C" NOT NULL,
                first_seen_at BIGINT NOT NULL, PRIMARY KEY (device_id, country));
            CREATE TABLE paths (
                id TEXT COLLATE "C" PRIMARY KEY, name TEXT COLLATE "C" NOT NULL UNIQUE, created_at BIGINT NOT NULL, color TEXT COLLATE "C" NOT NULL DEFAULT '');
            CREATE TABLE path_hops (
                path_id TEXT COLLATE "C" NOT NULL REFERENCES paths(id) ON DELETE CASCADE, hop_index BIGINT NOT NULL,
                node_id TEXT COLLATE "C" NOT NULL REFERENCES nodes(id) ON DELETE RESTRICT, PRIMARY KEY (path_id, hop_index));
            CREATE TABLE node_links (
                id TEXT COLLATE "C" PRIMARY KEY,
                entry_node_id TEXT COLLATE "C" NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
                exit_node_id TEXT COLLATE "C" NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
                inner_interface TEXT COLLATE "C" NOT NULL, listen_port BIGINT NOT NULL, fwmark BIGINT NOT NULL,
                table_id BIGINT NOT NULL, created_at BIGINT NOT NULL,
                UNIQUE (entry_node_id, exit_node_id), UNIQUE (entry_node_id, inner_interface));
            CREATE TABLE retired_links (
                entry_node_id TEXT COLLATE "C" NOT NULL REFERENCES nodes(id) ON DELETE CASCADE, inner_interface TEXT COLLATE "C" NOT NULL,
                PRIMARY KEY (entry_node_id, inner_interface));
            CREATE TABLE device_exits (
                device_id TEXT COLLATE "C" PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
                path_id TEXT COLLATE "C" NOT NULL REFERENCES paths(id) ON DELETE RESTRICT,
                created_at BIGINT NOT NULL);
            CREATE TABLE ssh_identity (
                id BIGINT PRIMARY KEY CHECK (id = 1), private_key TEXT COLLATE "C" NOT NULL, public_key TEXT COLLATE "C" NOT NULL,
                created_at BIGINT NOT NULL);
            CREATE TABLE ssh_host_keys (
                host TEXT COLLATE "C" NOT NULL, key_type TEXT COLLATE "C" NOT NULL, public_key TEXT COLLATE "C" NOT NULL, pinned_at BIGINT NOT NULL,
                PRIMARY KEY (host, key_type));
            CREATE TABLE node_ssh (
                node_id TEXT COLLATE "C" PRIMARY KEY REFERENCES nodes(id) ON DELETE CASCADE,
                "user" TEXT COLLATE "C" NOT NULL, host TEXT COLLATE "C" NOT NULL, port BIGINT NOT NULL, package_version TEXT COLLATE "C" NOT NULL DEFAULT '',
                created_at BIGINT NOT NULL);
            CREATE TABLE relay_ssh (
                relay_id TEXT COLLATE "C" PRIMARY KEY REFERENCES relays(id) ON DELETE CASCADE,
                "user" TEXT COLLATE "C" NOT NULL, host TEXT COLLATE "C" NOT NULL, port BIGINT NOT NULL, package_version TEXT COLLATE "C" NOT NULL DEFAULT '',
                created_at BIGINT NOT NULL);
            CREATE INDEX peers_by_node ON peers(node_id);
            CREATE INDEX peers_by_device ON peers(device_id);
            CREATE INDEX audit_by_time ON audit_log(at, id);
            CREATE INDEX connection_events_by_time ON connection_events(at);
            CREATE INDEX connection_events_by_device ON connection_events(device_id, at);
            CREATE UNIQUE INDEX alerts_one_open ON alerts(dedup_key) WHERE status != 'resolved';
            CREATE INDEX sessions_by_expiry ON sessions(expires_at);
            CREATE INDEX admin_sessions_by_expiry ON admin_sessions(expires_at);
            CREATE INDEX audit_by_action ON audit_log(action, at);
            CREATE INDEX audit_by_actor ON audit_log(actor, at);
            CREATE INDEX connection_events_by_node ON connection_events(node_id, at);
            CREATE INDEX connection_events_by_peer ON connection_events(node_id, peer_id, at);
            CREATE INDEX api_tokens_by_name ON api_tokens(name);
            CREATE INDEX relay_leaves_relay ON relay_leaves (relay_id, issued_at);
            CREATE INDEX removed_peers_by_device ON removed_peers(device_id);
            CREATE INDEX connection_events_by_type ON connection_events(event_type, device_id, at);
            CREATE INDEX path_hops_by_node ON path_hops(node_id);
            CREATE INDEX profile_specs_by_path ON profile_specs(path_id);
            CREATE INDEX device_exits_by_path ON device_exits(path_id);
            """
}
