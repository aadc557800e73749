import NIOSSL

/// NIOSSL configurations for PharosVPN legs: our roots only, TLS 1.3 on internal legs.
public enum PharosTLSConfiguration {
    public enum ClientCertificates: Sendable {
        /// A valid client certificate is required (internal legs).
        case required
        /// A client may come without one; identity is then enforced per call (relay's public side).
        case optional
    }

    /// A server presenting `identity`. Pair the context with a `PeerVerifier.callback`
    /// in the `NIOSSLServerHandler` so peer chains are checked by our policy.
    public static func server(identity: TLSIdentity, roots: TrustRoots, clientCertificates: ClientCertificates = .required,
                              minimumVersion: TLSVersion = .tlsv13,
                              applicationProtocols: [String] = []) -> TLSConfiguration {
        var config = TLSConfiguration.makeServerConfiguration(
            certificateChain: identity.nioChain.map { .certificate($0) }, privateKey: .privateKey(identity.nioPrivateKey))
        config.minimumTLSVersion = minimumVersion
        config.trustRoots = .certificates(roots.nioCertificates)
        config.certificateVerification = clientCertificates == .required ? .noHostnameVerification : .optionalVerification
        config.applicationProtocols = applicationProtocols
        return config
    }

    /// A client that trusts only `roots` and checks the server's name (`serverHostname`
    /// at the handler). `identity` is the client certificate, when it has one.
    public static func client(identity: TLSIdentity?, roots: TrustRoots, minimumVersion: TLSVersion = .tlsv13,
                              applicationProtocols: [String] = []) -> TLSConfiguration {
        var config = TLSConfiguration.makeClientConfiguration()
        config.minimumTLSVersion = minimumVersion
        config.trustRoots = .certificates(roots.nioCertificates)
        config.additionalTrustRoots = []
        config.certificateVerification = .fullVerification
        if let identity {
            config.certificateChain = identity.nioChain.map { .certificate($0) }
            config.privateKey = .privateKey(identity.nioPrivateKey)
        }
        config.applicationProtocols = applicationProtocols
        return config
    }
}
