/// The JSON form: fields in the order v, epk, wn, wk, n, ct, sig; bytes as standard base64.
extension SealedBundle {
    public var json: JSONValue {
        .object([
            JSONMember("v", .integer(version)),
            JSONMember("epk", .bytes(ephemeralPublicKey)),
            JSONMember("wn", .bytes(wrapNonce)),
            JSONMember("wk", .bytes(wrappedKey)),
            JSONMember("n", .bytes(nonce)),
            JSONMember("ct", .bytes(ciphertext)),
            JSONMember("sig", .bytes(signature)),
        ])
    }

    /// The bytes the signature covers: rebuilt from the decoded values with `sig`
    /// null, never the bytes of the file, so key order and extra members do not matter.
    public var signedBytes: [UInt8] {
        var unsigned = self
        unsigned.signature = nil
        return unsigned.json.compactBytes()
    }

    /// Indented JSON, as upstream writers emit it.
    public func encoded() -> [UInt8] { json.indentedBytes() }

    public init(jsonBytes: [UInt8]) throws(PharosFormatError) {
        try self.init(json: JSONFields(parsing: jsonBytes, format: Self.format, limit: Self.maximumSize))
    }

    public init(json value: JSONValue) throws(PharosFormatError) {
        try self.init(json: JSONFields(value, format: Self.format))
    }

    init(json f: JSONFields) throws(PharosFormatError) {
        let version = try f.integer("v", as: Int.self)
        guard version == Self.currentVersion else {
            throw .unsupportedVersion(format: Self.format, version: String(version))
        }
        self.init(
            version: version,
            ephemeralPublicKey: try f.bytes("epk", length: 32),
            wrapNonce: try f.bytes("wn", length: XChaCha20Poly1305.nonceLength),
            wrappedKey: try f.bytes("wk", length: 32 + XChaCha20Poly1305.tagLength),
            nonce: try f.bytes("n", length: XChaCha20Poly1305.nonceLength),
            ciphertext: try f.bytes("ct"),
            signature: try f.bytes("sig", length: 64))
        guard ciphertext.count >= XChaCha20Poly1305.tagLength else {
            throw .wrongLength(format: Self.format, field: "ct", expected: XChaCha20Poly1305.tagLength, actual: ciphertext.count)
        }
    }
}
