import Foundation
import PharosSpec

/// What the controller pushed for VLESS+REALITY (checked by `validated()` before it is
/// applied), and the xray server JSON rendered from it (one VLESS inbound with REALITY, a freedom outbound).
public struct XRayServerConfig: Sendable, Equatable, Codable {
    public struct Client: Sendable, Equatable, Codable {
        public var peerID: String
        /// The VLESS client UUID (Peer.public_key), lowercase once validated.
        public var id: String
        public var flow: String

        public init(peerID: String, id: String, flow: String = "") {
            self.peerID = peerID
            self.id = id
            self.flow = flow
        }

        /// The client as xray is given it: a UUID (lowercased, so an upsert or removal finds it
        /// whatever case the controller used) and a flow xray supports.
        public func validated() throws(PeerValidationError) -> Client {
            guard UUID(uuidString: id) != nil else {
                throw .invalid(peer: peerID, field: "public_key", reason: "must be the VLESS client UUID")
            }
            guard flow.isEmpty || flow == "xtls-rprx-vision" else {
                throw .invalid(peer: peerID, field: "flow", reason: "\"\(flow)\" is not a supported VLESS flow")
            }
            return Client(peerID: peerID, id: id.lowercased(), flow: flow)
        }
    }

    public var clients: [Client] = []
    public var dest = ""
    public var serverNames: [String] = []
    public var shortIDs: [String] = []
    /// 0 = the XRay service is down.
    public var port = 0

    public init(clients: [Client] = [], dest: String = "", serverNames: [String] = [], shortIDs: [String] = [], port: Int = 0) {
        self.clients = clients
        self.dest = dest
        self.serverNames = serverNames
        self.shortIDs = shortIDs
        self.port = port
    }

    /// A pushed config checked completely (every client, then the REALITY settings), with its
    /// clients normalized; nothing is applied unless it passes.
    public func validated() throws(PeerValidationError) -> XRayServerConfig {
        var valid = self
        valid.clients = try clients.map { client throws(PeerValidationError) in try client.validated() }
        guard (0...65535).contains(port) else { throw .invalid(peer: "-", field: "port", reason: "\(port) is not a port") }
        if port != 0 {
            do { _ = try HostPort.parse(dest) } catch {
                throw .invalid(peer: "-", field: "dest", reason: "\(error)")
            }
            guard !serverNames.isEmpty else { throw .invalid(peer: "-", field: "server_names", reason: "must not be empty") }
        }
        for shortID in shortIDs where shortID.count > 16 || shortID.count % 2 != 0 || !shortID.allSatisfy(\.isHexDigit) {
            throw .invalid(peer: "-", field: "short_ids", reason: "\"\(shortID)\" must be an even number (≤ 16) of hex digits")
        }
        return valid
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
}
