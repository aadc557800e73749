/// The AmneziaWG obfuscation set: the node owns one, generated once; every client of the
/// node must be given exactly the same values. The empty set is plain WireGuard. The one
/// representation of it in the tree: the node's identity file, GetStatus (through
/// PharosProtoMapping), the profile bundle and UAPI (PharosWireGuard) all read this type.
public struct Obfuscation: Sendable, Equatable, Hashable {
    public var jc: UInt32, jmin: UInt32, jmax: UInt32
    public var s1: UInt32, s2: UInt32, s3: UInt32, s4: UInt32
    public var h1: UInt32, h2: UInt32, h3: UInt32, h4: UInt32
    /// Signature packets (AmneziaWG 1.5 templates); empty when unused.
    public var i1: String, i2: String, i3: String, i4: String, i5: String

    public init(jc: UInt32 = 0, jmin: UInt32 = 0, jmax: UInt32 = 0, s1: UInt32 = 0, s2: UInt32 = 0, s3: UInt32 = 0, s4: UInt32 = 0,
                h1: UInt32 = 0, h2: UInt32 = 0, h3: UInt32 = 0, h4: UInt32 = 0,
                i1: String = "", i2: String = "", i3: String = "", i4: String = "", i5: String = "") {
        (self.jc, self.jmin, self.jmax) = (jc, jmin, jmax)
        (self.s1, self.s2, self.s3, self.s4) = (s1, s2, s3, s4)
        (self.h1, self.h2, self.h3, self.h4) = (h1, h2, h3, h4)
        (self.i1, self.i2, self.i3, self.i4, self.i5) = (i1, i2, i3, i4, i5)
    }

    /// True for the empty set: plain WireGuard.
    public var isEmpty: Bool { self == Obfuscation() }

    /// Upstream's generation ranges: Jc 3–10; Jmin 25–75; Jmax = Jmin + 700–900; S1–S4
    /// 15–150 with S2 ≠ S1 + 56; H1–H4 four distinct values in [5, 2^31 − 1]; no I1–I5.
    public static func generate<R: RandomNumberGenerator>(using rng: inout R) -> Obfuscation {
        let jmin = UInt32.random(in: 25...75, using: &rng)
        let s1 = UInt32.random(in: 15...150, using: &rng)
        var s2 = UInt32.random(in: 15...150, using: &rng)
        while s2 == s1 + 56 { s2 = UInt32.random(in: 15...150, using: &rng) }
        var headers = Set<UInt32>()
        while headers.count < 4 { headers.insert(UInt32.random(in: 5...UInt32(Int32.max), using: &rng)) }
        let h = Array(headers).shuffled(using: &rng)
        return Obfuscation(jc: .random(in: 3...10, using: &rng), jmin: jmin, jmax: jmin + .random(in: 700...900, using: &rng),
                           s1: s1, s2: s2, s3: .random(in: 15...150, using: &rng), s4: .random(in: 15...150, using: &rng),
                           h1: h[0], h2: h[1], h3: h[2], h4: h[3])
    }

    public static func generate() -> Obfuscation {
        var rng = SystemRandomNumberGenerator()
        return generate(using: &rng)
    }

    /// The first invariant this set breaks, or nil. A node checks its own set with it; the
    /// empty set (plain WireGuard) is not a node's set and breaks "distinct".
    public var violatedInvariant: String? {
        if jmin > jmax { return "jmin > jmax" }
        if Set([h1, h2, h3, h4]).count != 4 { return "h1-h4 are not distinct" }
        if [h1, h2, h3, h4].contains(where: { $0 < 5 }) { return "an h value is below 5" }
        if s2 == s1 + 56 { return "s2 = s1 + 56" }
        return nil
    }
}

/// Keys `jc` … `h4`, then `i1` … `i5` only when set: the node's `awg-node.json` as every
/// version wrote it (files without `i*` keys load; missing numbers are 0 and fail the
/// node's invariant check instead of passing silently).
extension Obfuscation: Codable {
    enum CodingKeys: String, CodingKey {
        case jc, jmin, jmax, s1, s2, s3, s4, h1, h2, h3, h4, i1, i2, i3, i4, i5
    }

    static var numeric: [(CodingKeys, WritableKeyPath<Obfuscation, UInt32>)] { [
        (.jc, \.jc), (.jmin, \.jmin), (.jmax, \.jmax), (.s1, \.s1), (.s2, \.s2), (.s3, \.s3), (.s4, \.s4),
        (.h1, \.h1), (.h2, \.h2), (.h3, \.h3), (.h4, \.h4),
    ] }
    static var templates: [(CodingKeys, WritableKeyPath<Obfuscation, String>)] { [
        (.i1, \.i1), (.i2, \.i2), (.i3, \.i3), (.i4, \.i4), (.i5, \.i5),
    ] }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        for (key, path) in Self.numeric { self[keyPath: path] = try container.decodeIfPresent(UInt32.self, forKey: key) ?? 0 }
        for (key, path) in Self.templates { self[keyPath: path] = try container.decodeIfPresent(String.self, forKey: key) ?? "" }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        for (key, path) in Self.numeric { try container.encode(self[keyPath: path], forKey: key) }
        for (key, path) in Self.templates where !self[keyPath: path].isEmpty { try container.encode(self[keyPath: path], forKey: key) }
    }
}
