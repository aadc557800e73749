import Crypto

/// The relay leaves a device must refuse (issue #20): serials (lowercase hex) of relay
/// certificates the controller revoked before they expire — a removed relay's, or one its
/// relay has replaced. The controller signs the compact JSON
/// `{"v":1,"fleet":…,"issued_at_ms":…,"nonce":…,"serials":[…]}` with its profile-signing key
/// (Ed25519 over `"pharos denied relays v1\0"` followed by those bytes). The nonce is the
/// device's, fresh for each request, so a relay passing the list along can neither forge,
/// trim nor replay it, and one cut off from the controller cannot produce one.
public struct DeniedRelayList: Sendable, Equatable {
    public static let currentVersion = 1
    /// The store's sidecar beside a cloud entry: `<name>.deniedrelays` (`Signed.encoded()`).
    public static let fileExtension = ".deniedrelays"
    static let format = "relay deny list"
    static let context = Array("pharos denied relays v1".utf8) + [0]
    /// A list holds at most this many serials (revoked leaves drop off when they expire).
    public static let maximumSerials = 10_000

    /// The fleet root's fingerprint (a join link's `ca`): a list of another fleet is refused.
    public var fleetID: String
    public var issuedAtMilliseconds: Int64
    /// The requesting device's nonce, 16–64 bytes.
    public var nonce: [UInt8]
    /// Lowercase hex, sorted, each once.
    public var serials: [String]

    public static let nonceLengths = 16...64

    public init(fleetID: String, issuedAtMilliseconds: Int64, nonce: [UInt8], serials: [String]) {
        self.fleetID = fleetID.lowercased()
        self.issuedAtMilliseconds = issuedAtMilliseconds
        self.nonce = nonce
        self.serials = Set(serials.map { $0.lowercased() }).sorted()
    }

    var json: JSONValue {
        .object([
            JSONMember("v", .integer(Self.currentVersion)),
            JSONMember("fleet", .string(fleetID)),
            JSONMember("issued_at_ms", .integer(issuedAtMilliseconds)),
            JSONMember("nonce", .bytes(nonce)),
            JSONMember("serials", .array(serials.map { .string($0) })),
        ])
    }

    init(payload: [UInt8]) throws(PharosFormatError) {
        let f = try JSONFields(parsing: payload, format: Self.format, limit: 1 << 20)
        let version = try f.integer("v", as: Int.self)
        guard version == Self.currentVersion else { throw .unsupportedVersion(format: Self.format, version: String(version)) }
        let serials = try f.strings("serials")
        guard serials.count <= Self.maximumSerials else {
            throw .malformed(format: Self.format, reason: "it names \(serials.count) serials; the limit is \(Self.maximumSerials)")
        }
        let hex = Set("0123456789abcdef")
        guard serials.allSatisfy({ (1...64).contains($0.count) && $0.allSatisfy(hex.contains) }) else {
            throw .malformed(format: Self.format, reason: "a serial is not lowercase hex")
        }
        let nonce = try f.bytes("nonce")
        guard Self.nonceLengths.contains(nonce.count) else {
            throw .malformed(format: Self.format, reason: "its nonce is \(nonce.count) bytes, not 16–64")
        }
        self.init(fleetID: try f.string("fleet"), issuedAtMilliseconds: try f.integer("issued_at_ms"), nonce: nonce, serials: serials)
    }

    /// The list as the controller hands it out: its bytes and the signing key's signature.
    public func signed(with key: Curve25519.Signing.PrivateKey) throws -> Signed {
        let payload = json.compactBytes()
        return Signed(payload: payload, signature: Array(try key.signature(for: Self.context + payload)))
    }

    public struct Signed: Sendable, Equatable {
        public var payload: [UInt8]
        public var signature: [UInt8]

        public init(payload: [UInt8], signature: [UInt8]) {
            self.payload = payload
            self.signature = signature
        }

        /// The list, when `signature` is `signingKey`'s over the payload, the payload parses,
        /// it is `fleetID`'s (nil: an identity that names no fleet; the key is the fleet's) and
        /// answers `nonce` (nil: a list checked when it arrived). Each failure is its own sentence.
        public func verified(signingKey: [UInt8], fleetID: String?, nonce: [UInt8]? = nil) throws(PharosFormatError) -> DeniedRelayList {
            guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: signingKey) else {
                throw .invalidKey(field: "signing_public_key", reason: "not an Ed25519 public key")
            }
            guard signature.count == 64, key.isValidSignature(signature, for: DeniedRelayList.context + payload) else {
                throw .signatureInvalid
            }
            let list = try DeniedRelayList(payload: payload)
            if let fleetID, list.fleetID != fleetID.lowercased() {
                throw .malformed(format: DeniedRelayList.format, reason: "it is fleet \(list.fleetID.prefix(16))…'s, not this device's fleet \(fleetID.prefix(16))…")
            }
            if let nonce, list.nonce != nonce {
                throw .malformed(format: DeniedRelayList.format, reason: "it answers another request (its nonce is not this request's): a replayed answer")
            }
            return list
        }

        /// The stored form: compact `{"v":1,"list":<base64>,"sig":<base64>}`.
        public func encoded() -> [UInt8] {
            JSONValue.object([
                JSONMember("v", .integer(DeniedRelayList.currentVersion)),
                JSONMember("list", .bytes(payload)),
                JSONMember("sig", .bytes(signature)),
            ]).compactBytes()
        }

        public init(jsonBytes: [UInt8]) throws(PharosFormatError) {
            let f = try JSONFields(parsing: jsonBytes, format: DeniedRelayList.format, limit: 2 << 20)
            let version = try f.integer("v", as: Int.self)
            guard version == DeniedRelayList.currentVersion else {
                throw .unsupportedVersion(format: DeniedRelayList.format, version: String(version))
            }
            self.init(payload: try f.bytes("list"), signature: try f.bytes("sig", length: 64))
        }
    }
}
