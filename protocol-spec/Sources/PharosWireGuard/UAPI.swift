import PharosSpec

/// The WireGuard cross-platform userspace API (wireguard-go, amneziawg-go): `set=1`
/// and `get=1` transactions of `key=value` lines over a Unix socket. Shared by the node
/// (server side, many peers) and caravel (client side, one peer with an endpoint).
public enum UAPI {
    /// One `set=1` transaction. `replacePeers` makes it a full, atomic replacement.
    public struct Set: Sendable, Equatable {
        public var privateKeyHex: String?
        public var listenPort: Int?
        /// Extra device keys in order (AmneziaWG's `jc=`…`h4=`); empty for plain WireGuard.
        public var deviceLines: [String] = []
        public var replacePeers = false
        public var peers: [Peer] = []

        public init(privateKeyHex: String? = nil, listenPort: Int? = nil, deviceLines: [String] = [],
                    replacePeers: Bool = false, peers: [Peer] = []) {
            self.privateKeyHex = privateKeyHex
            self.listenPort = listenPort
            self.deviceLines = deviceLines
            self.replacePeers = replacePeers
            self.peers = peers
        }
    }

    public struct Peer: Sendable, Equatable {
        public var publicKeyHex: String
        public var presharedKeyHex: String?
        public var allowedIPs: [String] = []
        public var remove = false
        /// `host:port` (IPv6 in brackets) the client sends to; servers leave it nil.
        public var endpoint: String?
        public var persistentKeepaliveSeconds: Int?
        /// Changes an existing peer's endpoint and keepalive only (`update_only=true`): its
        /// PSK and AllowedIPs are neither sent nor touched.
        public var updateOnly = false

        public init(publicKeyHex: String, presharedKeyHex: String? = nil, allowedIPs: [String] = [], remove: Bool = false,
                    endpoint: String? = nil, persistentKeepaliveSeconds: Int? = nil, updateOnly: Bool = false) {
            self.publicKeyHex = publicKeyHex
            self.presharedKeyHex = presharedKeyHex
            self.allowedIPs = allowedIPs
            self.remove = remove
            self.endpoint = endpoint
            self.persistentKeepaliveSeconds = persistentKeepaliveSeconds
            self.updateOnly = updateOnly
        }
    }

    /// A peer as `get=1` reports it.
    public struct PeerStatus: Sendable, Equatable {
        public var publicKeyHex: String
        public var endpoint = ""
        /// Seconds since the epoch; 0 = never.
        public var lastHandshakeSeconds: Int64 = 0
        public var rxBytes: UInt64 = 0
        public var txBytes: UInt64 = 0
        public var allowedIPs: [String] = []

        public init(publicKeyHex: String) { self.publicKeyHex = publicKeyHex }
    }

    public struct DeviceStatus: Sendable, Equatable {
        public var listenPort = 0
        public var publicKeyOfPrivateKeyHex = ""
        public var peers: [PeerStatus] = []
    }
}

extension UAPI.Set {
    /// The request text, ending with the blank line that closes the transaction.
    /// Contains secrets: it goes to the socket and nowhere else.
    public func render() -> String {
        var lines = ["set=1"]
        if let privateKeyHex { lines.append("private_key=\(privateKeyHex)") }
        if let listenPort { lines.append("listen_port=\(listenPort)") }
        lines += deviceLines
        if replacePeers { lines.append("replace_peers=true") }
        for peer in peers {
            lines.append("public_key=\(peer.publicKeyHex)")
            if peer.remove {
                lines.append("remove=true")
                continue
            }
            if peer.updateOnly {
                lines.append("update_only=true")
                if let endpoint = peer.endpoint { lines.append("endpoint=\(endpoint)") }
                if let keepalive = peer.persistentKeepaliveSeconds { lines.append("persistent_keepalive_interval=\(keepalive)") }
                continue
            }
            // An all-zero key clears a previous PSK on upsert.
            lines.append("preshared_key=\(peer.presharedKeyHex ?? String(repeating: "0", count: 64))")
            if let endpoint = peer.endpoint { lines.append("endpoint=\(endpoint)") }
            if let keepalive = peer.persistentKeepaliveSeconds { lines.append("persistent_keepalive_interval=\(keepalive)") }
            lines.append("replace_allowed_ips=true")
            for ip in peer.allowedIPs { lines.append("allowed_ip=\(ip)") }
        }
        return lines.joined(separator: "\n") + "\n\n"
    }
}

extension UAPI.DeviceStatus {
    /// Parses a `get=1` answer (without the trailing `errno=` line, which the socket checks).
    public init(parsing text: String) {
        self.init()
        var current: UAPI.PeerStatus?
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq], value = String(line[line.index(after: eq)...])
            switch key {
            case "listen_port": listenPort = Int(value) ?? 0
            case "public_key":
                if let current { peers.append(current) }
                current = UAPI.PeerStatus(publicKeyHex: value)
            case "endpoint": current?.endpoint = value
            case "last_handshake_time_sec": current?.lastHandshakeSeconds = Int64(value) ?? 0
            case "rx_bytes": current?.rxBytes = UInt64(value) ?? 0
            case "tx_bytes": current?.txBytes = UInt64(value) ?? 0
            case "allowed_ip": current?.allowedIPs.append(value)
            default: continue
            }
        }
        if let current { peers.append(current) }
    }
}

public enum WireGuardKey {
    /// UAPI wants lowercase hex; configs and profiles carry base64.
    public static func hex(fromBase64 text: String) -> String? {
        guard let bytes = Base64.decodeStandard(text), bytes.count == 32 else { return nil }
        return Base64.hex(bytes)
    }

    public static func base64(fromHex text: String) -> String? {
        guard text.count == 64 else { return nil }
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            guard let b = UInt8(text[index..<next], radix: 16) else { return nil }
            bytes.append(b)
            index = next
        }
        return Base64.standard(bytes)
    }
}
