import Foundation
import PharosProto
import PharosSpec

/// What the controller pushed for VLESS+REALITY, validated, and the xray server JSON
/// rendered from it (one VLESS inbound with REALITY, a freedom outbound).
public struct XRayServerConfig: Sendable, Equatable, Codable {
    public struct Client: Sendable, Equatable, Codable {
        public var peerID: String
        /// The VLESS client UUID (Peer.public_key).
        public var id: String
        public var flow: String
    }

    public var clients: [Client] = []
    public var dest = ""
    public var serverNames: [String] = []
    public var shortIDs: [String] = []
    /// 0 = the XRay service is down.
    public var port = 0

    public init() {}

    public init(validating config: Pharos_Node_V1_XRayRealityConfig) throws(PeerValidationError) {
        clients = try config.peers.map { peer throws(PeerValidationError) in try Self.client(peer) }
        guard config.port <= 65535 else { throw .invalid(peer: "-", field: "port", reason: "\(config.port) is not a port") }
        port = Int(config.port)
        if port != 0 {
            do { _ = try HostPort.parse(config.dest) } catch {
                throw .invalid(peer: "-", field: "dest", reason: "\(error)")
            }
            guard !config.serverNames.isEmpty else { throw .invalid(peer: "-", field: "server_names", reason: "must not be empty") }
        }
        for shortID in config.shortIds where shortID.count > 16 || shortID.count % 2 != 0 || !shortID.allSatisfy(\.isHexDigit) {
            throw .invalid(peer: "-", field: "short_ids", reason: "\"\(shortID)\" must be an even number (≤ 16) of hex digits")
        }
        dest = config.dest
        serverNames = config.serverNames
        shortIDs = config.shortIds
    }

    static func client(_ peer: Pharos_Node_V1_Peer) throws(PeerValidationError) -> Client {
        guard UUID(uuidString: peer.publicKey) != nil else {
            throw .invalid(peer: peer.id, field: "public_key", reason: "must be the VLESS client UUID")
        }
        guard peer.flow.isEmpty || peer.flow == "xtls-rprx-vision" else {
            throw .invalid(peer: peer.id, field: "flow", reason: "\"\(peer.flow)\" is not a supported VLESS flow")
        }
        return Client(peerID: peer.id, id: peer.publicKey.lowercased(), flow: peer.flow)
    }

    /// The server JSON for `xray run -c`. Holds the REALITY private key: written 0600.
    public func rendered(privateKey: String) -> [UInt8] {
        let inbound = JSONValue.object([
            JSONMember("port", .integer(port)),
            JSONMember("protocol", .string("vless")),
            JSONMember("settings", .object([
                JSONMember("clients", .array(clients.map { c in
                    .object([JSONMember("id", .string(c.id)), JSONMember("flow", .string(c.flow))])
                })),
                JSONMember("decryption", .string("none")),
            ])),
            JSONMember("streamSettings", .object([
                JSONMember("network", .string("tcp")),
                JSONMember("security", .string("reality")),
                JSONMember("realitySettings", .object([
                    JSONMember("dest", .string(dest)),
                    JSONMember("serverNames", .array(serverNames.map(JSONValue.string))),
                    JSONMember("privateKey", .string(privateKey)),
                    JSONMember("shortIds", .array(shortIDs.map(JSONValue.string))),
                ])),
            ])),
        ])
        return JSONValue.object([
            JSONMember("log", .object([JSONMember("loglevel", .string("warning"))])),
            JSONMember("inbounds", .array([inbound])),
            JSONMember("outbounds", .array([.object([JSONMember("protocol", .string("freedom"))])])),
        ]).indentedBytes()
    }

    public var peers: [Pharos_Node_V1_Peer] {
        clients.map { c in
            var p = Pharos_Node_V1_Peer()
            p.id = c.peerID
            p.protocol = .xrayReality
            p.publicKey = c.id
            p.flow = c.flow
            return p
        }
    }
}
