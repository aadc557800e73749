/// Why TLS material could not be loaded, with the file and what to do.
public enum TLSSetupError: Error, Sendable, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case noCertificates(source: String)
    case invalidCertificate(source: String, reason: String)
    case invalidPrivateKey(source: String, reason: String)
    case keyFileTooOpen(path: String, mode: String)
    case keyDoesNotMatchCertificate(source: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason):
            "cannot read \(path): \(reason)"
        case .noCertificates(let source):
            "\(source) contains no PEM CERTIFICATE block"
        case .invalidCertificate(let source, let reason):
            "\(source) holds a certificate that does not parse: \(reason)"
        case .invalidPrivateKey(let source, let reason):
            "\(source) is not a usable PEM private key: \(reason)"
        case .keyFileTooOpen(let path, let mode):
            "\(path) has mode \(mode); a private key must not be readable by group or others (chmod 600 \(path))"
        case .keyDoesNotMatchCertificate(let source):
            "the private key in \(source) does not belong to the leaf certificate"
        }
    }
}
