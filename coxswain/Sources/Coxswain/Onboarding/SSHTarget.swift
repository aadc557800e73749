import Foundation

/// `USER@HOST[:PORT]`: where the controller logs in to install and drive an agent. `HOST` is a
/// name, an IPv4 address or a bracketed IPv6 address (`root@[2001:db8::7]:2222`); the user is
/// root when omitted, the port 22. Both are checked strictly: they go on ssh's command line,
/// and a host that began with `-` would be read as an option.
public struct SSHTarget: Sendable, Equatable, CustomStringConvertible {
    public var user: String
    public var host: String
    public var port: Int

    public init(user: String, host: String, port: Int) {
        self.user = user
        self.host = host
        self.port = port
    }

    public static func parse(_ text: String) throws(SSHError) -> SSHTarget {
        var rest = Substring(text)
        var user = "root"
        if let at = rest.lastIndex(of: "@") {
            user = String(rest[..<at])
            rest = rest[rest.index(after: at)...]
        }
        var host: Substring
        var port = 22
        let bracketed = rest.hasPrefix("[")
        if bracketed {
            guard let close = rest.firstIndex(of: "]") else { throw .invalidTarget(text, "an IPv6 address needs its closing ]") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let value = Int(after.dropFirst()) else { throw .invalidTarget(text, "expected :PORT after ]") }
                port = value
            }
        } else if let colon = rest.lastIndex(of: ":") {
            guard let value = Int(rest[rest.index(after: colon)...]) else { throw .invalidTarget(text, "the port must be a number") }
            host = rest[..<colon]
            port = value
        } else {
            host = rest
        }
        guard (1...65535).contains(port) else { throw .invalidTarget(text, "port \(port) is outside 1-65535") }
        guard let first = user.unicodeScalars.first, first == "_" || CharacterSet.lowercaseLetters.contains(first),
              user.count <= 32, user.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "_.-".unicodeScalars.contains($0)) })
        else { throw .invalidTarget(text, "\"\(user)\" is not a Unix user name") }
        guard let head = host.unicodeScalars.first, head != "-", head != ".",
              host.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || (bracketed ? ":." : ".-").unicodeScalars.contains($0)) })
        else {
            throw .invalidTarget(text, host.contains(":") && !bracketed ? "an IPv6 address goes in brackets: USER@[ADDRESS]:PORT"
                                                                        : "\"\(host)\" is not a host name or IP address")
        }
        guard let canonical = Self.canonical(String(host), ipv6: bracketed) else {
            throw .invalidTarget(text, "\"\(host)\" is not an IPv6 address")
        }
        return SSHTarget(user: user, host: canonical, port: port)
    }

    /// One spelling per host, as OpenSSH writes it to known_hosts (a pin is found by it):
    /// names in lower case, addresses as inet_ntop prints them.
    static func canonical(_ host: String, ipv6: Bool) -> String? {
        let family = ipv6 ? AF_INET6 : AF_INET
        var address = [UInt8](repeating: 0, count: 16)
        guard inet_pton(family, host, &address) == 1 else { return ipv6 ? nil : host.lowercased() }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(family, &address, &text, socklen_t(text.count)) != nil else { return nil }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// How OpenSSH's known_hosts names the host: `HOST` on port 22, else `[HOST]:PORT`.
    public var knownHostsName: String { port == 22 ? host : "[\(host)]:\(port)" }

    /// ssh's destination argument.
    var destination: String { "\(user)@\(host)" }

    /// The host part of an address the controller dials (`[v6]` for IPv6).
    var dialHost: String { host.contains(":") ? "[\(host)]" : host }

    public var description: String { port == 22 ? "\(user)@\(dialHost)" : "\(user)@\(dialHost):\(port)" }
}
