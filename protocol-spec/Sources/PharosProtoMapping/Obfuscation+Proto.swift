import PharosProto
import PharosSpec
import SwiftProtobuf

/// `AmneziaWGObfuscation` (GetStatus, inner links) ↔ the domain type, every field.
extension Obfuscation {
    public init(_ proto: Pharos_Node_V1_AmneziaWGObfuscation) {
        self.init(jc: proto.jc, jmin: proto.jmin, jmax: proto.jmax, s1: proto.s1, s2: proto.s2, s3: proto.s3, s4: proto.s4,
                  h1: proto.h1, h2: proto.h2, h3: proto.h3, h4: proto.h4,
                  i1: proto.i1, i2: proto.i2, i3: proto.i3, i4: proto.i4, i5: proto.i5)
    }

    public var proto: Pharos_Node_V1_AmneziaWGObfuscation {
        var out = Pharos_Node_V1_AmneziaWGObfuscation()
        (out.jc, out.jmin, out.jmax) = (jc, jmin, jmax)
        (out.s1, out.s2, out.s3, out.s4) = (s1, s2, s3, s4)
        (out.h1, out.h2, out.h3, out.h4) = (h1, h2, h3, h4)
        (out.i1, out.i2, out.i3, out.i4, out.i5) = (i1, i2, i3, i4, i5)
        return out
    }

    /// The controller caches a node's set as the message's protobuf JSON; nil or text that
    /// does not parse is the empty set (a node whose keys are not known yet).
    public init(protoJSON: String?) {
        guard let protoJSON, let proto = try? Pharos_Node_V1_AmneziaWGObfuscation(jsonString: protoJSON) else {
            self.init()
            return
        }
        self.init(proto)
    }
}
