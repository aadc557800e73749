#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `HOST:PORT` as every component writes it: a DNS name or an IPv4 literal, or an IPv6
/// literal in brackets (`[2001:db8::1]:8443`), then a port. Node control addresses, relay
/// endpoints, join-link relays, listen settings and observed client endpoints all parse here.
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    /// The host, without brackets.
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `[v6]:port` for IPv6 literals, `host:port` otherwise: what `parse` reads back.
    public var description: String { isIPv6Literal ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public var isIPv6Literal: Bool { host.contains(":") }

    public var isIPv4Literal: Bool {
        var address = in_addr()
        return inet_pton(AF_INET, host, &address) == 1
    }

    /// An address to dial: a host and a port 1–65535. With `defaultPort`, a bare host (or a
    /// bracketed IPv6 literal) takes that port. Surrounding whitespace is ignored.
    public static func parse(_ text: String, defaultPort: Int? = nil) throws(HostPortError) -> HostPort {
        let trimmed = text.trimmingWhitespace()
        guard !trimmed.isEmpty else { throw .empty }
        let (host, portText) = try split(trimmed)
        guard !host.isEmpty else { throw .missingHost(text) }
        try validate(host: host, in: text)
        guard let portText else {
            guard let defaultPort else { throw .missingPort(text) }
            return HostPort(host: host, port: defaultPort)
        }
        guard let port = Int(portText), (1...65535).contains(port) else { throw .invalidPort(text, port: portText) }
        return HostPort(host: host, port: port)
    }

    /// An address to listen on: `HOST:PORT`, or `:PORT` for every interface (0.0.0.0); port 0
    /// lets the system pick one.
    public static func listen(_ text: String) throws(HostPortError) -> HostPort {
        let trimmed = text.trimmingWhitespace()
        guard !trimmed.isEmpty else { throw .empty }
        let (host, portText) = try split(trimmed)
        guard let portText else { throw .missingPort(text) }
        guard let port = Int(portText), (0...65535).contains(port) else { throw .invalidPort(text, port: portText) }
        if !host.isEmpty { try validate(host: host, in: text) }
        return HostPort(host: host.isEmpty ? "0.0.0.0" : host, port: port)
    }

    /// The host and the text after its port colon (nil when there is none).
    private static func split(_ text: String) throws(HostPortError) -> (host: String, port: String?) {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw .invalidHost(text, host: text) }
            let host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if rest.isEmpty { return (host, nil) }
            guard rest.first == ":" else { throw .invalidHost(text, host: String(text[...close]) + rest) }
            return (host, String(rest.dropFirst()))
        }
        guard let colon = text.lastIndex(of: ":") else { return (text, nil) }
        let host = String(text[..<colon])
        if host.contains(":") { throw .unbracketedIPv6(text) }
        return (host, String(text[text.index(after: colon)...]))
    }

    private static func validate(host: String, in text: String) throws(HostPortError) {
        if host.contains(":") {
            var address = in6_addr()
            guard inet_pton(AF_INET6, host, &address) == 1 else { throw .invalidHost(text, host: host) }
            return
        }
        let allowed = host.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
        }
        guard allowed, host.utf8.count <= 253, !host.hasPrefix("."), !host.hasPrefix("-") else {
            throw .invalidHost(text, host: host)
        }
    }
}

public enum HostPortError: Error, Equatable, Sendable, CustomStringConvertible {
    case empty
    case missingPort(String)
    case invalidPort(String, port: String)
    case missingHost(String)
    case unbracketedIPv6(String)
    case invalidHost(String, host: String)

    public var description: String {
        switch self {
        case .empty: "the address is empty; expected HOST:PORT"
        case .missingPort(let text): "\"\(text)\" has no port; expected HOST:PORT"
        case .invalidPort(let text, let port): "\"\(text)\": \"\(port)\" is not a port number"
        case .missingHost(let text): "\"\(text)\" has no host; expected HOST:PORT"
        case .unbracketedIPv6(let text): "\"\(text)\": an IPv6 address must be in brackets, as in [2001:db8::1]:8443"
        case .invalidHost(let text, let host): "\"\(text)\": \"\(host)\" is neither a DNS name nor an IP address"
        }
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(scalars[first...last])
    }
}
