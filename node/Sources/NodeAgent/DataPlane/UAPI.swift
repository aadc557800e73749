/// The WireGuard cross-platform userspace API (wireguard-go, amneziawg-go): `set=1`
/// and `get=1` transactions of `key=value` lines over a Unix socket.
public enum UAPI {
    /// One `set=1` transaction. `replacePeers` makes it a full, atomic replacement.
    public struct Set: Sendable, Equatable {
        public var privateKeyHex: String?
        public var listenPort: Int?
        public var obfuscation: ObfuscationSet?
        public var replacePeers = false
        public var peers: [Peer] = []

        public init(privateKeyHex: String? = nil, listenPort: Int? = nil, obfuscation: ObfuscationSet? = nil,
                    replacePeers: Bool = false, peers: [Peer] = []) {
            self.privateKeyHex = privateKeyHex
            self.listenPort = listenPort
            self.obfuscation = obfuscation
            self.replacePeers = replacePeers
            self.peers = peers
        }
    }

    public struct Peer: Sendable, Equatable {
        public var publicKeyHex: String
        public var presharedKeyHex: String?
        public var allowedIPs: [String] = []
        public var remove = false

        public init(publicKeyHex: String, presharedKeyHex: String? = nil, allowedIPs: [String] = [], remove: Bool = false) {
            self.publicKeyHex = publicKeyHex
            self.presharedKeyHex = presharedKeyHex
            self.allowedIPs = allowedIPs
            self.remove = remove
        }

        public init?(_ spec: PeerSpec) {
            guard let pub = WireGuardKey.hex(fromBase64: spec.publicKey) else { return nil }
            self.init(publicKeyHex: pub, presharedKeyHex: spec.presharedKey.isEmpty ? nil : WireGuardKey.hex(fromBase64: spec.presharedKey),
                      allowedIPs: spec.allowedIPs)
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
        if let obfuscation { lines += obfuscation.uapiLines }
        if replacePeers { lines.append("replace_peers=true") }
        for peer in peers {
            lines.append("public_key=\(peer.publicKeyHex)")
            if peer.remove {
                lines.append("remove=true")
                continue
            }
            // An all-zero key clears a previous PSK on upsert.
            lines.append("preshared_key=\(peer.presharedKeyHex ?? String(repeating: "0", count: 64))")
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
