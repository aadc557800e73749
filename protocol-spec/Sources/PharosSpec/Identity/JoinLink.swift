import Foundation

/// `pharosvpn://enroll?ca=<root fingerprint>&relay=<host:port>&token=<ticket>`: the
/// one-time link (or QR code) that enrolls a device.
public struct JoinLink: Sendable, Equatable {
    public static let scheme = "pharosvpn"
    public static let host = "enroll"

    public var relay: String
    public var token: String
    /// Lowercase hex SHA-256 of the root certificate DER.
    public var caFingerprint: String

    public init(relay: String, token: String, caFingerprint: String) {
        self.relay = relay
        self.token = token
        self.caFingerprint = caFingerprint
    }

    /// Query keys sorted, values escaped as Go's `url.QueryEscape` does.
    public var url: String {
        "\(Self.scheme)://\(Self.host)?ca=\(Self.escape(caFingerprint))&relay=\(Self.escape(relay))&token=\(Self.escape(token))"
    }

    /// Parses and validates a link. Whitespace around the link and values is ignored;
    /// for a repeated key the first non-empty value counts.
    public init(parsing text: String) throws(PharosFormatError) {
        let link = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let prefix = "\(Self.scheme)://"
        guard link.lowercased().hasPrefix(prefix) else {
            throw .invalidJoinLink(reason: "it must start with \(prefix)\(Self.host)?")
        }
        var rest = Substring(link.dropFirst(prefix.count))
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        let host = rest.prefix { $0 != "?" && $0 != "/" }
        guard host.lowercased() == Self.host else { throw .invalidJoinLink(reason: "host is \"\(host)\", expected \"\(Self.host)\"") }
        var values: [String: String] = [:]
        if let q = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: q)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard let key = Self.unescape(String(parts[0])) else { throw .invalidJoinLink(reason: "bad percent-escape in \"\(parts[0])\"") }
                let raw = parts.count > 1 ? String(parts[1]) : ""
                guard let value = Self.unescape(raw)?.trimmingCharacters(in: .whitespaces) else {
                    throw .invalidJoinLink(reason: "bad percent-escape in the value of \(key)")
                }
                if values[key] == nil, !value.isEmpty { values[key] = value }
            }
        }
        for key in ["relay", "token", "ca"] where values[key] == nil {
            throw .invalidJoinLink(reason: "the \(key) parameter is missing")
        }
        let relay = values["relay"]!, ca = values["ca"]!
        do { _ = try HostPort.parse(relay) } catch { throw .invalidJoinLink(reason: "relay: \(error)") }
        guard ca.count == 64, ca.allSatisfy(\.isHexDigit) else {
            throw .invalidJoinLink(reason: "ca must be the 64-hex-digit SHA-256 fingerprint of the root certificate")
        }
        self.init(relay: relay, token: values["token"]!, caFingerprint: ca.lowercased())
    }

    /// Compares with the fingerprint a controller returned, case-insensitively.
    public func matchesCA(_ fingerprint: String) -> Bool {
        fingerprint.lowercased() == caFingerprint.lowercased()
    }

    private static func escape(_ s: String) -> String {
        var out = ""
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"),
                 UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(byte)))
            case UInt8(ascii: " "): out.append("+")
            default: out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }

    private static func unescape(_ s: String) -> String? {
        var bytes: [UInt8] = []
        var it = Array(s.utf8).makeIterator()
        while let b = it.next() {
            switch b {
            case UInt8(ascii: "+"): bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let h = it.next(), let l = it.next(),
                      let v = UInt8(String(decoding: [h, l], as: UTF8.self), radix: 16) else { return nil }
                bytes.append(v)
            default: bytes.append(b)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
