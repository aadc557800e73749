import Foundation
import PharosRuntime

/// A leaf a daemon renewed while it ran (`node-renewed.pem`, `relay-renewed.pem`): its key,
/// then its chain, in one 0600 file replaced in one rename, so a chain never goes without
/// its key. At start the daemon presents it or the leaf the operator installed, whichever
/// was issued last (an operator who re-enrolled by hand wins over an older renewal).
public enum RenewedIdentityFile {
    public enum Choice {
        /// No renewed file.
        case none
        case renewed(TLSIdentity, keyPEM: String)
        /// The installed leaf was issued after the renewed one (re-enrolled by hand).
        case installedIsNewer
        /// The file is there but does not load: it is passed over, never deleted.
        case unreadable(String)
    }

    /// What `path` offers over the `installed` identity.
    public static func choose(path: String, over installed: TLSIdentity) -> Choice {
        let bytes: [UInt8]?
        do { bytes = try AtomicFile.read(path) } catch { return .unreadable("\(error)") }
        guard let bytes else { return .none }
        let text = String(decoding: bytes, as: UTF8.self)
        let keyPEM = keyPEM(in: text)
        do {
            let renewed = try TLSIdentity(certificatePEM: text, keyPEM: keyPEM, source: path)
            return renewed.leaf.notValidBefore >= installed.leaf.notValidBefore ? .renewed(renewed, keyPEM: keyPEM) : .installedIsNewer
        } catch {
            return .unreadable("\(error)")
        }
    }

    /// Stores key and chain together (0600), creating the directory (0700) when missing.
    public static func write(keyPEM: String, chainPEM: String, to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !FileManager.default.fileExists(atPath: directory) {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        }
        try AtomicFile.write(Array(((keyPEM.hasSuffix("\n") ? keyPEM : keyPEM + "\n") + chainPEM).utf8), to: path, mode: 0o600)
    }

    /// The private key block of a PEM text (PKCS#8 or SEC 1), or "" when there is none.
    public static func keyPEM(in text: String) -> String {
        guard let start = text.range(of: "-----BEGIN PRIVATE KEY-----") ?? text.range(of: "-----BEGIN EC PRIVATE KEY-----"),
              let end = text.range(of: "PRIVATE KEY-----", range: start.upperBound..<text.endIndex) else { return "" }
        return String(text[start.lowerBound..<end.upperBound]) + "\n"
    }
}

/// Why a renewed leaf was not taken (a node's `InstallCertificate`, a relay's renewal answer).
public enum RenewalFailure: Error, Equatable, CustomStringConvertible {
    /// No key is waiting for a certificate (it was used or replaced meanwhile).
    case noPendingKey
    case wrongKey
    case unreadableChain(String)
    case refused(String)
    case storage(String)

    public var description: String {
        switch self {
        case .noPendingKey: "no renewal is pending: its key was used or replaced (start the renewal again)"
        case .wrongKey: "the renewed certificate is not for the pending key (was the renewal started again since?)"
        case .unreadableChain(let reason): "the renewed certificate chain does not parse: \(reason)"
        case .refused(let reason): "the renewed certificate is refused: \(reason)"
        case .storage(let reason): "the renewed certificate could not be stored: \(reason)"
        }
    }
}

extension RenewedIdentityFile {
    /// The identity a renewed chain makes with the pending key, once the chain is for that
    /// key and meets `requirements` under `roots` (in date among them). Nothing is stored.
    public static func verify(chainPEM: String, keyPEM: String, roots: TrustRoots, requirements: PeerRequirements,
                              source: String) async throws(RenewalFailure) -> TLSIdentity {
        let renewed: TLSIdentity
        do { renewed = try TLSIdentity(certificatePEM: chainPEM, keyPEM: keyPEM, source: source) } catch {
            if case .keyDoesNotMatchCertificate = error { throw .wrongKey }
            throw .unreadableChain("\(error)")
        }
        if case .failure(let rejection) = await PeerVerifier(roots: roots, requirements: requirements).verify(renewed.certificates) {
            throw .refused("\(rejection)")
        }
        return renewed
    }
}
