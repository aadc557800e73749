import PharosSpec
import Testing

@Suite struct ObfuscationTests {
    @Test func generatedSetsKeepUpstreamRangesAndInvariants() {
        for _ in 0..<2000 {
            let o = Obfuscation.generate()
            #expect(o.violatedInvariant == nil)
            #expect((3...10).contains(o.jc) && (25...75).contains(o.jmin))
            #expect((700...900).contains(o.jmax - o.jmin))
            #expect([o.s1, o.s2, o.s3, o.s4].allSatisfy { (15...150).contains($0) })
            #expect([o.h1, o.h2, o.h3, o.h4].allSatisfy { $0 >= 5 && $0 <= UInt32(Int32.max) })
        }
    }

    @Test func invariantsAreChecked() {
        var o = Obfuscation.generate()
        o.s2 = o.s1 + 56
        #expect(o.violatedInvariant == "s2 = s1 + 56")
        o = Obfuscation.generate()
        o.h2 = o.h1
        #expect(o.violatedInvariant == "h1-h4 are not distinct")
    }
}
