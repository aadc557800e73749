/// An IPv4 CIDR block and the tunnel-address allocation inside it.
public struct IPv4Subnet: Sendable, Equatable, CustomStringConvertible {
    public let network: UInt32
    public let prefixLength: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let prefix = Int(parts[1]), (0...32).contains(prefix),
              let address = Self.parse(String(parts[0])) else { return nil }
        let mask: UInt32 = prefix == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefix)
        guard address & ~mask == 0 else { return nil }  // host bits set: ambiguous, refuse
        self.network = address
        self.prefixLength = prefix
    }

    public var description: String { "\(Self.format(network))/\(prefixLength)" }

    var size: UInt64 { UInt64(1) << UInt64(32 - prefixLength) }

    /// The first usable host address, which the fleet reserves for the nodes' own tunnel side.
    public var gateway: String { Self.format(network + 1) }

    /// The lowest free host address, skipping the network, the gateway (.1) and broadcast.
    public func firstFree(excluding used: Set<String>) -> String? {
        guard size >= 4 else { return nil }
        var offset: UInt64 = 2
        while offset < size - 1 {
            let candidate = Self.format(network + UInt32(offset))
            if !used.contains(candidate) { return candidate }
            offset += 1
        }
        return nil
    }

    public func contains(_ address: String) -> Bool {
        guard let value = Self.parse(address) else { return false }
        let mask: UInt32 = prefixLength == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefixLength)
        return value & mask == network
    }

    static func parse(_ text: String) -> UInt32? {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var value: UInt32 = 0
        for octet in octets {
            guard octet.count <= 3, let byte = UInt8(octet), octet == String(byte) else { return nil }
            value = value << 8 | UInt32(byte)
        }
        return value
    }

    static func format(_ value: UInt32) -> String {
        "\(value >> 24).\(value >> 16 & 255).\(value >> 8 & 255).\(value & 255)"
    }
}
