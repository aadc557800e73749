import Foundation

/// Turns a record into its columns, in the order its `encode(to:)` writes them. Optionals
/// that are `nil` become NULL (an update must clear them), not absent columns.
enum SQLRecordEncoder {
    struct Column {
        let name: String
        let value: SQLValue
    }

    static func encode<R: Encodable>(_ record: R) throws -> [Column] {
        let storage = Storage()
        try record.encode(to: ColumnEncoder(storage: storage))
        return storage.columns
    }

    final class Storage {
        var columns: [Column] = []
    }

    struct ColumnEncoder: Encoder {
        let storage: Storage
        var codingPath: [any CodingKey] { [] }
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            KeyedEncodingContainer(Container(storage: storage))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer { fatalError("a record is a keyed container of columns") }
        func singleValueContainer() -> any SingleValueEncodingContainer { fatalError("a record is a keyed container of columns") }
    }

    struct Container<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let storage: Storage
        var codingPath: [any CodingKey] { [] }

        func add(_ value: SQLValue, _ key: Key) { storage.columns.append(Column(name: key.stringValue, value: value)) }

        mutating func encodeNil(forKey key: Key) throws { add(.null, key) }
        mutating func encode(_ value: Bool, forKey key: Key) throws { add(value.sqlValue, key) }
        mutating func encode(_ value: String, forKey key: Key) throws { add(value.sqlValue, key) }
        mutating func encode(_ value: Double, forKey key: Key) throws { add(value.sqlValue, key) }
        mutating func encode(_ value: Int, forKey key: Key) throws { add(value.sqlValue, key) }
        mutating func encode(_ value: Int64, forKey key: Key) throws { add(value.sqlValue, key) }
        mutating func encode(_ value: Int32, forKey key: Key) throws { add(value.sqlValue, key) }

        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            guard let bindable = value as? any SQLBindable else {
                throw EncodingError.invalidValue(value, .init(codingPath: [key], debugDescription: "\(T.self) is not a column type"))
            }
            add(bindable.sqlValue, key)
        }

        // Synthesized `encode(to:)` skips nil optionals with these; a row update must write NULL.
        mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws { add(value.sqlValue, key) }
        mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws { add(value.sqlValue, key) }
        mutating func encodeIfPresent(_ value: Double?, forKey key: Key) throws { add(value.sqlValue, key) }
        mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws { add(value.sqlValue, key) }
        mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) throws { add(value.sqlValue, key) }
        mutating func encodeIfPresent(_ value: Int32?, forKey key: Key) throws { add(value.sqlValue, key) }
        mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws {
            guard let value else { return add(.null, key) }
            try encode(value, forKey: key)
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            fatalError("column \(key.stringValue): nested values are not stored")
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            fatalError("column \(key.stringValue): nested values are not stored")
        }
        mutating func superEncoder() -> any Encoder { fatalError("records have no superclass") }
        mutating func superEncoder(forKey key: Key) -> any Encoder { fatalError("records have no superclass") }
    }
}

/// Reads a record from a row by its coding keys (the column names).
struct SQLRowDecoder: Decoder {
    let row: SQLRow
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(Container(row: row))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        throw DecodingError.typeMismatch(SQLRow.self, .init(codingPath: [], debugDescription: "a record is a keyed container of columns"))
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        throw DecodingError.typeMismatch(SQLRow.self, .init(codingPath: [], debugDescription: "a record is a keyed container of columns"))
    }

    struct Container<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let row: SQLRow
        var codingPath: [any CodingKey] { [] }
        var allKeys: [Key] { row.columns.compactMap(Key.init(stringValue:)) }

        func contains(_ key: Key) -> Bool { row.columns.contains(key.stringValue) }

        func raw(_ key: Key) throws -> SQLValue {
            guard let value = row.value(named: key.stringValue) else {
                throw DecodingError.keyNotFound(key, .init(codingPath: [], debugDescription: "no column \(key.stringValue)"))
            }
            return value
        }

        func decodeNil(forKey key: Key) throws -> Bool {
            guard let value = row.value(named: key.stringValue) else { return true }
            return value == .null
        }

        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            guard let column = T.self as? any SQLDecodable.Type else {
                throw DecodingError.typeMismatch(T.self, .init(codingPath: [key], debugDescription: "\(T.self) is not a column type"))
            }
            let value = try raw(key)
            guard let decoded = column.decode(sql: value) as? T else {
                throw DecodingError.typeMismatch(T.self, .init(codingPath: [key], debugDescription: "column \(key.stringValue) holds \(value)"))
            }
            return decoded
        }

        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
            throw DecodingError.typeMismatch(SQLRow.self, .init(codingPath: [key], debugDescription: "nested values are not stored"))
        }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            throw DecodingError.typeMismatch(SQLRow.self, .init(codingPath: [key], debugDescription: "nested values are not stored"))
        }
        func superDecoder() throws -> any Decoder { SQLRowDecoder(row: row) }
        func superDecoder(forKey key: Key) throws -> any Decoder { SQLRowDecoder(row: row) }
    }
}
