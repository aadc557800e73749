import Crypto
import Foundation
@testable import PharosSpec

/// Files written by Vectors/make_vectors.py, an independent Python implementation.
enum Vectors {
    static let directory = Bundle.module.url(forResource: "Vectors", withExtension: nil)!

    static func bytes(_ name: String) -> [UInt8] {
        Array(try! Data(contentsOf: directory.appendingPathComponent(name)))
    }

    static func text(_ name: String) -> String { String(decoding: bytes(name), as: UTF8.self) }

    static let keys = try! JSONFields(parsing: bytes("keys.json"), format: "keys", limit: 1 << 20)

    static func key(_ name: String) -> [UInt8] { try! keys.bytes(name) }

    static var recipient: Curve25519.KeyAgreement.PrivateKey { try! .init(rawRepresentation: key("recipient_private")) }
    static var signer: Curve25519.Signing.PrivateKey { try! .init(rawRepresentation: key("signing_private")) }
    static var signingPublic: Curve25519.Signing.PublicKey { signer.publicKey }
    static var password: [UInt8] { Array(try! keys.string("password").utf8) }
}
