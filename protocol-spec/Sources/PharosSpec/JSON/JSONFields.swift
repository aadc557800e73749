/// Reads the members of one JSON object for a named format, turning every problem
/// into a `PharosFormatError` that names the format and the field.
public struct JSONFields: Sendable {
    public let format: String
    public let members: [JSONMember]

    public init(_ value: JSONValue, format: String) throws(PharosFormatError) {
        guard case .object(let members) = value else {
            throw .malformed(format: format, reason: "expected a JSON object, found \(value.kindName)")
        }
        self.format = format
        self.members = members
    }

    /// Parses `bytes` as one JSON object, refusing input over `limit` bytes first.
    public init(parsing bytes: [UInt8], format: String, limit: Int) throws(PharosFormatError) {
        guard bytes.count <= limit else { throw .tooLarge(format: format, limit: limit, actual: bytes.count) }
        let value: JSONValue
        do { value = try JSONValue(parsing: bytes) } catch { throw .malformed(format: format, reason: error.description) }
        try self.init(value, format: format)
    }

    public subscript(key: String) -> JSONValue? { members.first { $0.key == key }?.value }

    /// The field, treating `null` as absent.
    public func optional(_ key: String) -> JSONValue? {
        guard let v = self[key], v != .null else { return nil }
        return v
    }

    public func required(_ key: String) throws(PharosFormatError) -> JSONValue {
        guard let v = optional(key) else { throw .missingField(format: format, field: key) }
        return v
    }

    private func typeError(_ key: String, _ expected: String, _ v: JSONValue) -> PharosFormatError {
        .wrongFieldType(format: format, field: key, expected: expected, found: v.kindName)
    }

    public func string(_ key: String) throws(PharosFormatError) -> String {
        let v = try required(key)
        guard case .string(let s) = v else { throw typeError(key, "a string", v) }
        return s
    }

    /// Absent and `null` both read as "".
    public func optionalString(_ key: String) throws(PharosFormatError) -> String {
        guard let v = optional(key) else { return "" }
        guard case .string(let s) = v else { throw typeError(key, "a string", v) }
        return s
    }

    public func integer<I: FixedWidthInteger>(_ key: String, as: I.Type = I.self) throws(PharosFormatError) -> I {
        let v = try required(key)
        guard case .number(let n) = v else { throw typeError(key, "an integer", v) }
        guard let i = I(n) else { throw .wrongFieldType(format: format, field: key, expected: "an integer in range of \(I.self)", found: n) }
        return i
    }

    public func optionalInteger<I: FixedWidthInteger>(_ key: String, as: I.Type = I.self) throws(PharosFormatError) -> I? {
        guard optional(key) != nil else { return nil }
        return try integer(key, as: I.self)
    }

    public func optionalDouble(_ key: String) throws(PharosFormatError) -> Double? {
        guard let v = optional(key) else { return nil }
        guard case .number(let n) = v, let d = Double(n) else { throw typeError(key, "a number", v) }
        return d
    }

    public func optionalBool(_ key: String) throws(PharosFormatError) -> Bool? {
        guard let v = optional(key) else { return nil }
        guard case .bool(let b) = v else { throw typeError(key, "a boolean", v) }
        return b
    }

    /// A Go `[]byte` field: canonical standard base64, optionally of an exact length.
    public func bytes(_ key: String, length: Int? = nil) throws(PharosFormatError) -> [UInt8] {
        let v = try required(key)
        guard case .string(let s) = v else { throw typeError(key, "a base64 string", v) }
        guard let bytes = Base64.decodeStandard(s) else { throw .invalidBase64(format: format, field: key) }
        if let length, bytes.count != length {
            throw .wrongLength(format: format, field: key, expected: length, actual: bytes.count)
        }
        return bytes
    }

    public func optionalBytes(_ key: String) throws(PharosFormatError) -> [UInt8]? {
        guard optional(key) != nil else { return nil }
        return try bytes(key)
    }

    public func array(_ key: String) throws(PharosFormatError) -> [JSONValue] {
        guard let v = optional(key) else { return [] }
        guard case .array(let items) = v else { throw typeError(key, "an array", v) }
        return items
    }

    public func strings(_ key: String) throws(PharosFormatError) -> [String] {
        var out: [String] = []
        for item in try array(key) {
            guard case .string(let s) = item else { throw typeError(key, "an array of strings", item) }
            out.append(s)
        }
        return out
    }

    public func object(_ key: String) throws(PharosFormatError) -> JSONFields? {
        guard let v = optional(key) else { return nil }
        guard case .object = v else { throw typeError(key, "an object", v) }
        return try JSONFields(v, format: format)
    }

    /// The nested object, or an empty one when the field is absent or null.
    public func objectOrEmpty(_ key: String) throws(PharosFormatError) -> JSONFields {
        if let o = try object(key) { return o }
        return try JSONFields(.object([]), format: format)
    }
}
