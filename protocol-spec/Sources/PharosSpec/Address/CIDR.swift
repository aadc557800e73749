#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 network in CIDR notation (`10.86.0.2/32`, `::/0`): what AllowedIPs, tunnel
/// addresses and routes are checked against before they reach UAPI or `ip`.
public enum CIDR {
    /// Address bytes and prefix length, or nil when `text` is not exactly a CIDR (no spaces,
    /// no leading zeros in the prefix, no other characters: a newline cannot ride along).
    public static func parse(_ text: String) -> (bytes: [UInt8], bits: Int)? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let bits = Int(parts[1]), String(bits) == parts[1] else { return nil }
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, String(parts[0]), &v4) == 1, (0...32).contains(bits) {
            return (withUnsafeBytes(of: &v4) { Array($0) }, bits)
        }
        if inet_pton(AF_INET6, String(parts[0]), &v6) == 1, (0...128).contains(bits) {
            return (withUnsafeBytes(of: &v6) { Array($0) }, bits)
        }
        return nil
    }

    /// True when every address of `inner` lies inside `outer` (same family).
    public static func contains(_ outer: String, _ inner: String) -> Bool {
        guard let o = parse(outer), let i = parse(inner), o.bytes.count == i.bytes.count, i.bits >= o.bits else { return false }
        for bit in 0..<o.bits {
            let mask = UInt8(0x80) >> UInt8(bit % 8)
            if o.bytes[bit / 8] & mask != i.bytes[bit / 8] & mask { return false }
        }
        return true
    }

    public static func isValid(_ text: String) -> Bool {
        parse(text) != nil
    }
}
