import PharosSpec
import Testing

@Suite struct SecretStreamTests {
    let key = secureRandomBytes(SecretStream.keyLength)

    func sealed(_ chunks: [[UInt8]], aad: [UInt8] = Array("header".utf8)) -> (header: [UInt8], chunks: [[UInt8]]) {
        var sealer = SecretStream.Sealer(key: key)
        return (sealer.header, chunks.enumerated().map { sealer.seal($1, aad: aad, final: $0 == chunks.count - 1) })
    }

    @Test func chunksOpenInOrderAndOnlyTheLastIsFinal() throws {
        let plain: [[UInt8]] = [Array("one".utf8), [], Array(repeating: 7, count: 70_000)]
        let (header, chunks) = sealed(plain)
        #expect(chunks.map(\.count) == plain.map { $0.count + SecretStream.overhead })
        var opener = try #require(SecretStream.Opener(key: key, header: header))
        var opened: [(plaintext: [UInt8], final: Bool)] = []
        for chunk in chunks {
            let result = opener.open(chunk, aad: Array("header".utf8))
            opened.append(try #require(result))
        }
        #expect(opened.map(\.plaintext) == plain)
        #expect(opened.map(\.final) == [false, false, true])
    }

    @Test func aMovedAlteredOrForeignChunkDoesNotOpen() throws {
        let (header, chunks) = sealed([[1], [2], [3]])
        let aad = Array("header".utf8)
        var skipping = try #require(SecretStream.Opener(key: key, header: header))
        let skipped = skipping.open(chunks[1], aad: aad)
        #expect(skipped == nil)
        var altered = try #require(SecretStream.Opener(key: key, header: header))
        var bad = chunks[0]
        bad[bad.count - 1] ^= 1
        let alteredResult = altered.open(bad, aad: aad)
        #expect(alteredResult == nil)
        var otherAAD = try #require(SecretStream.Opener(key: key, header: header))
        let otherAADResult = otherAAD.open(chunks[0], aad: Array("headex".utf8))
        #expect(otherAADResult == nil)
        var otherKey = try #require(SecretStream.Opener(key: secureRandomBytes(SecretStream.keyLength), header: header))
        let otherKeyResult = otherKey.open(chunks[0], aad: aad)
        #expect(otherKeyResult == nil)
        #expect(SecretStream.Opener(key: key, header: Array(header.dropLast())) == nil)
    }
}
