import Foundation
import PharosProto
import PharosProtoMapping
import PharosSpec
import Testing

@Suite struct ObfuscationMappingTests {
    static let full = Obfuscation(jc: 4, jmin: 40, jmax: 800, s1: 20, s2: 30, s3: 40, s4: 50, h1: 5, h2: 6, h3: 7, h4: 8,
                                  i1: "<b 0xf6ab3267fa>", i2: "<r 16>", i3: "<c>", i4: "<t>", i5: "<rc 8>")

    @Test func everyFieldCrossesTheProtoBothWays() throws {
        let proto = Self.full.proto
        #expect(proto.h4 == 8 && proto.i5 == "<rc 8>" && proto.jmax == 800)
        #expect(Obfuscation(proto) == Self.full)
        #expect(Obfuscation(protoJSON: try proto.jsonString()) == Self.full)
    }

    @Test func unknownSetsAreEmpty() {
        #expect(Obfuscation(protoJSON: nil).isEmpty)
        #expect(Obfuscation(protoJSON: "{}").isEmpty)
        #expect(Obfuscation(protoJSON: "not json").isEmpty)
    }

    /// awg-node.json as nodes wrote it before i1–i5 existed still loads; new files keep
    /// that shape while i1–i5 are unused.
    @Test func theNodeIdentityFileFormatIsStable() throws {
        let old = #"{"h1":5,"h2":6,"h3":7,"h4":8,"jc":4,"jmax":800,"jmin":40,"s1":20,"s2":30,"s3":40,"s4":50}"#
        let decoded = try JSONDecoder().decode(Obfuscation.self, from: Data(old.utf8))
        #expect(decoded == Obfuscation(jc: 4, jmin: 40, jmax: 800, s1: 20, s2: 30, s3: 40, s4: 50, h1: 5, h2: 6, h3: 7, h4: 8))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        #expect(String(decoding: try encoder.encode(decoded), as: UTF8.self) == old)
        #expect(try JSONDecoder().decode(Obfuscation.self, from: encoder.encode(Self.full)) == Self.full)
        #expect(try JSONDecoder().decode(Obfuscation.self, from: Data("{}".utf8)).violatedInvariant != nil,
                "a file without its numbers must fail the node's check, not pass as plain WireGuard")
    }
}
