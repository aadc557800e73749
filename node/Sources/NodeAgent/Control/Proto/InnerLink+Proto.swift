import PharosProto
import PharosProtoMapping
import PharosSpec

/// `InnerLinkConfig` → `InnerLink`, copying fields; the core validates after its fence.
extension InnerLink {
    init(_ proto: Pharos_Node_V1_InnerLinkConfig, revision: Int64) {
        self.init(interface: proto.interface, listenPort: Int(proto.listenPort), mtu: Int(proto.mtu),
                  peerObfuscation: proto.hasPeerObfuscation ? Obfuscation(proto.peerObfuscation) : nil,
                  exit: PeerSpec(proto.exit), revision: revision)
    }
}
