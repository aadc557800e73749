/// A JSON document that keeps object members in order and numbers as written.
///
/// Signatures and AAD in PharosVPN are computed over JSON rebuilt field by field the
/// way Go's `encoding/json` writes it, so the order of members is part of the format.
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number's lexeme, exactly as read or as `JSONValue.integer`/`.double` wrote it.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([JSONMember])

    public static func integer<I: BinaryInteger>(_ value: I) -> JSONValue { .number(String(value)) }

    public static func double(_ value: Double) -> JSONValue { .number(GoFloat.format(value)) }

    /// Standard padded base64, as Go encodes `[]byte`; `nil` becomes `null`.
    public static func bytes(_ value: [UInt8]?) -> JSONValue {
        guard let value else { return .null }
        return .string(Base64.standard(value))
    }
}

public struct JSONMember: Sendable, Equatable {
    public var key: String
    public var value: JSONValue

    public init(_ key: String, _ value: JSONValue) {
        self.key = key
        self.value = value
    }
}

extension JSONValue {
    /// The value of the first member named `key`, when this is an object.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// Go's `strconv.FormatFloat(f, 'g'-like, -1, 64)` as used by `encoding/json`:
/// shortest round-trip digits, plain notation for 1e-6 <= |f| < 1e21, exponent
/// notation (`1e-07`, `1e+21`) outside that range.
enum GoFloat {
    static func format(_ value: Double) -> String {
        if value == 0 { return value.sign == .minus ? "-0" : "0" }
        let magnitude = abs(value)
        let (digits, exponent) = shortestDigits(magnitude)
        let sign = value < 0 ? "-" : ""
        if magnitude < 1e-6 || magnitude >= 1e21 {
            var mantissa = String(digits.first!)
            if digits.count > 1 { mantissa += "." + digits.dropFirst() }
            let e = exponent - 1
            let eSign = e < 0 ? "-" : "+"
            let eDigits = String(abs(e))
            return sign + mantissa + "e" + eSign + (eDigits.count < 2 ? "0" + eDigits : eDigits)
        }
        // Plain notation: value = 0.d1d2... × 10^exponent.
        if exponent <= 0 {
            return sign + "0." + String(repeating: "0", count: -exponent) + digits
        }
        if exponent >= digits.count {
            return sign + digits + String(repeating: "0", count: exponent - digits.count)
        }
        let split = digits.index(digits.startIndex, offsetBy: exponent)
        return sign + digits[..<split] + "." + digits[split...]
    }

    /// Shortest decimal digits `d1d2...dn` and exponent `e` with value = 0.d1...dn × 10^e,
    /// taken from Swift's own shortest round-trip `description`.
    private static func shortestDigits(_ value: Double) -> (String, Int) {
        let text = value.description  // e.g. "52.3676", "1e-07", "1.5e+22", "100.0"
        var mantissa = Substring(text)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...])!
        }
        var intPart = mantissa
        var fracPart: Substring = ""
        if let dot = mantissa.firstIndex(of: ".") {
            intPart = mantissa[..<dot]
            fracPart = mantissa[mantissa.index(after: dot)...]
        }
        var digits = String(intPart) + fracPart
        var pointPosition = intPart.count + exponent
        while digits.first == "0" && digits.count > 1 {
            digits.removeFirst()
            pointPosition -= 1
        }
        while digits.last == "0" && digits.count > 1 { digits.removeLast() }
        return (digits, pointPosition)
    }
}
