import Foundation

/// One value as both engines hold it: SQLite's storage classes, PostgreSQL's `bigint`,
/// `double precision`, `text` and `bytea` (a PostgreSQL `boolean` is read as 0 or 1).
public enum SQLValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob(Data)
}

/// A Swift value that can be bound to a `?` of a statement.
public protocol SQLBindable {
    var sqlValue: SQLValue { get }
}

/// A Swift value that can be read from a column. `nil` when the column holds something else.
public protocol SQLDecodable {
    static func decode(sql value: SQLValue) -> Self?
}

extension String: SQLBindable, SQLDecodable {
    public var sqlValue: SQLValue { .text(self) }
    public static func decode(sql value: SQLValue) -> String? {
        switch value {
        case .text(let text): text
        case .blob(let data): String(data: data, encoding: .utf8)
        case .integer(let int): String(int)
        default: nil
        }
    }
}

extension Int64: SQLBindable, SQLDecodable {
    public var sqlValue: SQLValue { .integer(self) }
    public static func decode(sql value: SQLValue) -> Int64? {
        switch value {
        case .integer(let int): int
        case .real(let real): Int64(exactly: real)
        default: nil
        }
    }
}

extension Int: SQLBindable, SQLDecodable {
    public var sqlValue: SQLValue { .integer(Int64(self)) }
    public static func decode(sql value: SQLValue) -> Int? { Int64.decode(sql: value).map { Int($0) } }
}

extension Int32: SQLBindable, SQLDecodable {
    public var sqlValue: SQLValue { .integer(Int64(self)) }
    public static func decode(sql value: SQLValue) -> Int32? { Int64.decode(sql: value).flatMap { Int32(exactly: $0) } }
}

extension Bool: SQLBindable, SQLDecodable {
    /// Stored as 0 or 1 in both engines (columns are integers, not PostgreSQL booleans).
    public var sqlValue: SQLValue { .integer(self ? 1 : 0) }
    public static func decode(sql value: SQLValue) -> Bool? { Int64.decode(sql: value).map { $0 != 0 } }
}

extension Double: SQLBindable, SQLDecodable {
    public var sqlValue: SQLValue { .real(self) }
    public static func decode(sql value: SQLValue) -> Double? {
        switch value {
        case .real(let real): real
        case .integer(let int): Double(int)
        default: nil
        }
    }
}

extension Data: SQLBindable, SQLDecodable {
    public var sqlValue: SQLValue { .blob(self) }
    public static func decode(sql value: SQLValue) -> Data? {
        switch value {
        case .blob(let data): data
        case .text(let text): Data(text.utf8)
        default: nil
        }
    }
}

extension Optional: SQLBindable where Wrapped: SQLBindable {
    public var sqlValue: SQLValue { self?.sqlValue ?? .null }
}

extension Optional: SQLDecodable where Wrapped: SQLDecodable {
    /// `.some(nil)` for NULL; `nil` (a type mismatch) for a value `Wrapped` cannot read.
    public static func decode(sql value: SQLValue) -> Wrapped?? {
        if case .null = value { return .some(nil) }
        return Wrapped.decode(sql: value).map { .some($0) }
    }
}

extension SQLValue: SQLBindable {
    public var sqlValue: SQLValue { self }
}

/// The store's string enums (statuses, roles, kinds) bind and read as their raw value.
public protocol SQLStringEnum: SQLBindable, SQLDecodable, RawRepresentable where RawValue == String {}

extension SQLStringEnum {
    public var sqlValue: SQLValue { .text(rawValue) }
    public static func decode(sql value: SQLValue) -> Self? { String.decode(sql: value).flatMap(Self.init(rawValue:)) }
}

/// LIKE patterns both engines read alike: `escaped` makes `\`, `%` and `_` literal (with
/// `ESCAPE '\'` in the statement), `asciiLowercased` lowers the pattern as `LOWER(column)`
/// lowers the column on both (ASCII only: SQLite's LOWER, PostgreSQL's under COLLATE "C").
enum SQLPattern {
    static func escaped(_ text: String) -> String {
        var out = ""
        for character in text {
            if character == "\\" || character == "%" || character == "_" { out.append("\\") }
            out.append(character)
        }
        return out
    }

    static func asciiLowercased(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { scalar in
            (65...90).contains(scalar.value) ? Unicode.Scalar(scalar.value + 32)! : scalar
        }))
    }
}
