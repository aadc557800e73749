/// Key order fmt, v, enc, kdf, nonce, payload; `kdf` and `nonce` omitted when empty;
/// `kdf` key order algo, t, m, p, salt.
extension ProfileEnvelope {
    public var json: JSONValue {
        var members = [
            JSONMember("fmt", .string(Self.formatTag)),
            JSONMember("v", .integer(version)),
            JSONMember("enc", .string(encryption.rawValue)),
        ]
        if let kdf {
            members.append(JSONMember("kdf", .object([
                JSONMember("algo", .string(kdf.algorithm)),
                JSONMember("t", .integer(kdf.parameters.time)),
                JSONMember("m", .integer(kdf.parameters.memoryKiB)),
                JSONMember("p", .integer(kdf.parameters.parallelism)),
                JSONMember("salt", .bytes(kdf.salt)),
            ])))
        }
        if !nonce.isEmpty { members.append(JSONMember("nonce", .bytes(nonce))) }
        members.append(JSONMember("payload", payload))
        return .object(members)
    }

    /// Password-mode AAD: the compact envelope rebuilt from the parsed values with
    /// `payload: null`, so enc, v, kdf and nonce cannot be changed undetected.
    public var additionalData: [UInt8] {
        var header = self
        header.payload = .null
        return header.json.compactBytes()
    }

    /// Indented JSON, as upstream writers emit it.
    public func encoded() -> [UInt8] { json.indentedBytes() }

    /// True when `bytes` look like a `.pharos` file, whatever the file is called.
    public static func sniff(_ bytes: [UInt8]) -> Bool {
        guard bytes.count <= maximumSize, let value = try? JSONValue(parsing: bytes) else { return false }
        return value["fmt"] == .string(formatTag)
    }

    public init(jsonBytes: [UInt8]) throws(PharosFormatError) {
        let f = try JSONFields(parsing: jsonBytes, format: Self.format, limit: Self.maximumSize)
        let fmt = try f.optionalString("fmt")
        guard fmt == Self.formatTag else { throw .notThisFormat(format: Self.format, found: fmt.isEmpty ? "missing" : "\"\(fmt)\"") }
        let version = try f.integer("v", as: Int.self)
        guard version == Self.currentVersion else { throw .unsupportedVersion(format: Self.format, version: String(version)) }
        let encName = try f.string("enc")
        guard let encryption = Encryption(rawValue: encName) else { throw .unknownEncryptionMode(encName) }
        var kdf: KDF?
        if let k = try f.object("kdf") {
            kdf = KDF(algorithm: try k.string("algo"),
                      parameters: Argon2id.Parameters(time: try k.integer("t"), memoryKiB: try k.integer("m"),
                                                      parallelism: try k.integer("p")),
                      salt: try k.optionalBytes("salt"))
        }
        self.init(version: version, encryption: encryption, kdf: kdf,
                  nonce: try f.optionalBytes("nonce") ?? [], payload: f["payload"] ?? .null)
    }
}
