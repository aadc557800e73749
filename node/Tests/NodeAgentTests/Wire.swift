import PharosProto
import SwiftProtobuf

/// Requests as the controller sends them, for the tests of the protobuf edge and of the
/// control port.
enum Wire {
    static func peer(_ id: String, key: String = Support.key(), ip: String) -> Pharos_Node_V1_Peer {
        var p = Pharos_Node_V1_Peer()
        p.id = id
        p.protocol = .amneziawg
        p.publicKey = key
        p.allowedIps = [ip]
        return p
    }

    static func push(_ revision: Int64, _ peers: [Pharos_Node_V1_Peer]) throws -> Pharos_Node_V1_PushConfigRequest {
        var config = Pharos_Node_V1_AmneziaWGConfig()
        config.peers = peers
        var request = Pharos_Node_V1_PushConfigRequest()
        request.protocol = .amneziawg
        request.revision = revision
        request.config = try config.serializedData()
        return request
    }
}
