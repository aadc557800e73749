import Testing
@testable import PharosSpec

@Suite struct JSONTests {
    @Test func escapesLikeGo() {
        let value = JSONValue.string("a\"b\\c\n\t<tag>&\u{2028}\u{01}\u{08}é")
        #expect(String(decoding: value.compactBytes(), as: UTF8.self) == #""a\"b\\c\n\t\u003ctag\u003e\u0026\u2028\u0001\bé""#)
    }

    @Test func indentsLikeGoMarshalIndent() {
        let value = JSONValue.object([
            JSONMember("a", .integer(1)), JSONMember("b", .array([])), JSONMember("c", .object([])),
            JSONMember("d", .array([.null, .bool(true)])),
        ])
        #expect(String(decoding: value.indentedBytes(), as: UTF8.self) == "{\n  \"a\": 1,\n  \"b\": [],\n  \"c\": {},\n  \"d\": [\n    null,\n    true\n  ]\n}")
    }

    @Test(arguments: [
        (52.3676, "52.3676"), (100.0, "100"), (1e-7, "1e-07"), (1e21, "1e+21"), (1e20, "100000000000000000000"),
        (0.000001, "0.000001"), (-4.5, "-4.5"), (123456789.125, "123456789.125"), (1.5e300, "1.5e+300"),
    ])
    func formatsFloatsLikeGo(value: Double, expected: String) {
        #expect(GoFloat.format(value) == expected)
    }

    @Test func parsesAndKeepsOrder() throws {
        let value = try JSONValue(parsing: Array(#" {"z":1,"a":[true,false,null,"\u00e9\ud83d\ude00"],"m":-0.5e+3} "#.utf8))
        #expect(String(decoding: value.compactBytes(), as: UTF8.self) == #"{"z":1,"a":[true,false,null,"é😀"],"m":-0.5e+3}"#)
    }

    @Test(arguments: [
        "", "{", "[1,]", #"{"a":1,}"#, "01", "1.", "tru", #""\x""#, #"{"a":1,"a":2}"#, "[1] [2]", "\"\u{01}\"",
        #""\ud800""#, "{'a':1}", "NaN",
    ])
    func rejectsHostileInput(text: String) {
        #expect(throws: JSONParseError.self) { _ = try JSONValue(parsing: Array(text.utf8)) }
    }

    @Test func rejectsInvalidUTF8AndDeepNesting() {
        #expect(throws: JSONParseError.self) { _ = try JSONValue(parsing: [0x22, 0xC3, 0x28, 0x22]) }
        let deep = Array(String(repeating: "[", count: 10_000).utf8)
        #expect(throws: JSONParseError.self) { _ = try JSONValue(parsing: deep) }
    }
}
