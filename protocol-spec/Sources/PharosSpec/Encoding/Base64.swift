import Foundation

/// Base64 as Go writes it. Decoding is strict: only the canonical encoding of a
/// byte string is accepted, so no two spellings of the same bytes both verify.
public enum Base64 {
    public static func standard(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
    }

    public static func decodeStandard(_ text: String) -> [UInt8]? {
        guard let data = Data(base64Encoded: text), data.base64EncodedString() == text else { return nil }
        return Array(data)
    }

    /// URL-safe alphabet without padding (Go's `base64.RawURLEncoding`).
    public static func rawURL(_ bytes: [UInt8]) -> String {
        var s = standard(bytes)
        s = s.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        while s.hasSuffix("=") { s.removeLast() }
        return s
    }

    public static func decodeRawURL(_ text: String) -> [UInt8]? {
        guard !text.contains("="), !text.contains("+"), !text.contains("/") else { return nil }
        var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while s.count % 4 != 0 { s += "=" }
        guard let bytes = decodeStandard(s) else { return nil }
        return bytes
    }

    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes { out += [digits[Int(b >> 4)], digits[Int(b & 0xF)]] }
        return String(decoding: out, as: UTF8.self)
    }
}
