// Prints protocol-spec benchmark figures as JSON lines (one result per line):
// seal and open throughput on one core for a realistic 4-node bundle, and the
// Argon2id time at upstream's parameters. `make bench` runs it in release mode.
import Crypto
import Foundation
import PharosSpec

func realisticBundle(nodes: Int) -> ProfileBundle {
    func key() -> String { Base64.standard(secureRandomBytes(32)) }
    var obfuscation = Obfuscation()
    (obfuscation.jc, obfuscation.jmin, obfuscation.jmax) = (5, 50, 850)
    (obfuscation.s1, obfuscation.s2, obfuscation.s3, obfuscation.s4) = (40, 90, 30, 20)
    (obfuscation.h1, obfuscation.h2, obfuscation.h3, obfuscation.h4) = (123_456, 234_567, 345_678, 456_789)
    let profileNodes = (0..<nodes).map { i in
        ProfileNode(
            id: "nod_\(String(repeating: "a", count: 15))\(i)", name: "node-\(i)", region: "eu-\(i)",
            endpoints: ["198.51.100.\(10 + i)", "203.0.113.\(10 + i)"],
            protocols: [
                .amneziaWG(AmneziaWGParams(
                    privateKey: key(), address: "10.86.0.5/32", publicKey: key(), presharedKey: key(),
                    endpoints: [EndpointPool(ip: "198.51.100.\(10 + i)", portMin: 2000, portMax: 60000)],
                    rotation: RotationPolicy(enabled: true, intervalSeconds: 600, jitterSeconds: 120),
                    allowedIPs: ["0.0.0.0/0", "::/0"], obfuscation: obfuscation)),
                .xrayReality(XRayRealityParams(
                    uuid: UUID().uuidString.lowercased(), flow: "xtls-rprx-vision", address: "10.86.0.5/32",
                    publicKey: Base64.rawURL(secureRandomBytes(32)), serverName: "www.microsoft.com", shortID: "0123abcd",
                    fingerprint: "chrome", endpoints: [], allowedIPs: ["0.0.0.0/0", "::/0"])),
            ])
    }
    return ProfileBundle(
        fleetID: "flt_bench", user: "ada@example.org", revision: 42, issuedAt: "2026-11-25T08:00:00Z",
        expiresAt: "2027-11-25T08:00:00Z",
        profiles: [ClientProfile(id: "prf_bench", name: "default", protocolChoice: .both, nodes: profileNodes)],
        control: ControlLocation(label: "home", city: "Amsterdam", latitude: 52.3676, longitude: 4.9041))
}

func measure(seconds: Double, _ body: () throws -> Void) rethrows -> (count: Int, elapsed: Double) {
    let clock = ContinuousClock()
    let start = clock.now
    var count = 0
    var elapsed = 0.0
    repeat {
        for _ in 0..<100 { try body() }
        count += 100
        let d = clock.now - start
        elapsed = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    } while elapsed < seconds
    return (count, elapsed)
}

func emit(_ fields: [(String, JSONValue)]) {
    print(String(decoding: JSONValue.object(fields.map { JSONMember($0.0, $0.1) }).compactBytes(), as: UTF8.self))
}

let recipient = Curve25519.KeyAgreement.PrivateKey()
let signer = Curve25519.Signing.PrivateKey()
let plaintext = realisticBundle(nodes: 4).json.compactBytes()
let sealedJSON = try SealedBundle.seal(plaintext, to: recipient.publicKey, signingKey: signer).encoded()

let seal = try measure(seconds: 3) {
    _ = try SealedBundle.seal(plaintext, to: recipient.publicKey, signingKey: signer).encoded()
}
emit([("bench", .string("sealed_bundle.seal")), ("nodes", .integer(4)), ("plaintext_bytes", .integer(plaintext.count)),
      ("sealed_bytes", .integer(sealedJSON.count)), ("iterations", .integer(seal.count)),
      ("bundles_per_second", .integer(Int(Double(seal.count) / seal.elapsed))), ("goal", .integer(5000)), ("threads", .integer(1))])

let open = try measure(seconds: 3) {
    _ = try SealedBundle.open(sealedJSON, with: recipient, signingPublicKey: signer.publicKey)
}
emit([("bench", .string("sealed_bundle.open")), ("nodes", .integer(4)), ("iterations", .integer(open.count)),
      ("bundles_per_second", .integer(Int(Double(open.count) / open.elapsed))), ("threads", .integer(1))])

var argonMillis: [Double] = []
let salt = secureRandomBytes(16)
for _ in 0..<7 {
    let clock = ContinuousClock()
    let start = clock.now
    _ = try Argon2id.deriveKey(password: Array("correct horse battery staple".utf8), salt: salt)
    let d = clock.now - start
    argonMillis.append(Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
}
argonMillis.sort()
emit([("bench", .string("argon2id.upstream")), ("t", .integer(1)), ("m_kib", .integer(65536)), ("p", .integer(4)),
      ("runs", .integer(argonMillis.count)), ("median_ms", .double((argonMillis[3] * 10).rounded() / 10)),
      ("min_ms", .double((argonMillis[0] * 10).rounded() / 10))])
