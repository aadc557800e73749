import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import PharosSpec
import PharosTLS
import PharosTestSupport
import Synchronization
import Testing
import X509

/// Real mTLS on loopback sockets: our server context + PeerVerifier against
/// clients holding good, foreign, expired, wrong-EKU and missing certificates.
@Suite struct MutualTLSTests {
    let pki: TestPKI
    let server: TestPKI.Leaf

    init() throws {
        pki = try TestPKI()
        server = try pki.leaf(commonName: "node-1", usage: [.serverAuth])
    }

    final class Lines: Sendable {
        private let lines = Mutex<[String]>([])
        func append(_ line: String) { lines.withLock { $0.append(line) } }
        func record(_ rejection: PeerRejection) { append(rejection.description) }
        var all: [String] { lines.withLock { $0 } }
    }
    typealias Rejections = Lines

    /// Starts an echo server, runs `body` with its port, returns the CNs of verified peers.
    func withEchoServer(requirements: PeerRequirements? = nil, rejections: Rejections,
                        _ body: (Int) async throws -> Void) async throws -> [String] {
        let verifier = PeerVerifier(roots: try pki.roots(),
                                    requirements: requirements ?? PeerRequirements(usage: .clientAuth, issuers: [pki.fleet]),
                                    onRejection: rejections.record)
        let context = try NIOSSLContext(configuration: PharosTLSConfiguration.server(identity: server.identity(), roots: pki.roots()))
        let seen = Lines()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(
                        NIOSSLServerHandler(context: context, customVerificationCallbackWithMetadata: verifier.callback))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: child)
                }
            }
        let port = channel.channel.localAddress!.port!
        let server = Task {
            try await channel.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { connections in
                    for try await connection in inbound {
                        connections.addTask {
                            do {
                                try await connection.executeThenClose { input, output in
                                    for try await message in input {
                                        if let chain = try await connection.channel.pharosVerifiedChain() {
                                            chain[0].commonNames.forEach(seen.append)
                                        }
                                        try await output.write(message)
                                    }
                                }
                            } catch {
                                // A refused handshake ends this connection only.
                            }
                        }
                    }
                }
            }
        }
        defer { server.cancel() }
        try await body(port)
        try await channel.channel.close()
        return seen.all
    }

    func echo(port: Int, identity: TLSIdentity?, roots: TrustRoots? = nil, maximumVersion: TLSVersion? = nil) async throws -> String {
        var config = PharosTLSConfiguration.client(identity: identity, roots: try roots ?? pki.roots(),
                                                   minimumVersion: maximumVersion == nil ? .tlsv13 : .tlsv12)
        if let maximumVersion { config.maximumTLSVersion = maximumVersion }
        let context = try NIOSSLContext(configuration: config)
        let client = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: "localhost"))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await client.executeThenClose { input, output in
            try await output.write(ByteBuffer(string: "ping"))
            for try await reply in input { return String(buffer: reply) }
            throw ChannelError.eof
        }
    }

    @Test func clientFromOurFleetCAConnects() async throws {
        let rejections = Rejections()
        let client = try pki.leaf(commonName: "coxswain", usage: [.clientAuth])
        let seen = try await withEchoServer(rejections: rejections) { port in
            let reply = try await echo(port: port, identity: client.identity())
            #expect(reply == "ping")
        }
        #expect(seen == ["coxswain"])
        #expect(rejections.all.isEmpty)
    }

    @Test func clientFromAForeignCAIsRefused() async throws {
        let rejections = Rejections()
        let foreign = try TestPKI(name: "Elsewhere").leaf(commonName: "intruder", usage: [.clientAuth])
        let seen = try await withEchoServer(rejections: rejections) { port in
            await #expect(throws: (any Error).self) { _ = try await echo(port: port, identity: foreign.identity()) }
        }
        #expect(seen.isEmpty)
        #expect(rejections.all.count == 1)
        #expect(rejections.all.first?.contains("no chain to a trusted root") == true, "\(rejections.all)")
    }

    @Test func expiredClientIsRefused() async throws {
        let rejections = Rejections()
        let expired = try pki.leaf(commonName: "old", usage: [.clientAuth], notValidBefore: Date() - 86400 * 2,
                                   notValidAfter: Date() - 3600)
        let seen = try await withEchoServer(rejections: rejections) { port in
            await #expect(throws: (any Error).self) { _ = try await echo(port: port, identity: expired.identity()) }
        }
        #expect(seen.isEmpty)
        #expect(rejections.all.first?.lowercased().contains("expired") == true, "\(rejections.all)")
    }

    @Test func clientWithoutACertificateIsRefused() async throws {
        let rejections = Rejections()
        let seen = try await withEchoServer(rejections: rejections) { port in
            await #expect(throws: (any Error).self) { _ = try await echo(port: port, identity: nil) }
        }
        #expect(seen.isEmpty)
    }

    @Test func clientWithoutClientAuthUsageIsRefused() async throws {
        let rejections = Rejections()
        let serverOnly = try pki.leaf(commonName: "confused", usage: [.serverAuth])
        _ = try await withEchoServer(rejections: rejections) { port in
            await #expect(throws: (any Error).self) { _ = try await echo(port: port, identity: serverOnly.identity()) }
        }
        #expect(rejections.all.first?.contains("extended key usage") == true, "\(rejections.all)")
    }

    @Test func organizationRequirementSeparatesRelaysFromNodes() async throws {
        let rejections = Rejections()
        let relay = try pki.leaf(commonName: "PharosVPN Relay", organization: PharosIdentity.Organization.relay, usage: [.clientAuth, .serverAuth])
        let node = try pki.leaf(commonName: "node-2", usage: [.clientAuth])
        let requirements = PeerRequirements(usage: .clientAuth, organizations: [PharosIdentity.Organization.relay])
        let seen = try await withEchoServer(requirements: requirements, rejections: rejections) { port in
            let reply = try await echo(port: port, identity: relay.identity())
            #expect(reply == "ping")
            await #expect(throws: (any Error).self) { _ = try await echo(port: port, identity: node.identity()) }
        }
        #expect(seen == ["PharosVPN Relay"])
        #expect(rejections.all.first?.contains("O=") == true, "\(rejections.all)")
    }

    @Test func tls12ClientIsRefusedOnInternalLegs() async throws {
        let rejections = Rejections()
        let client = try pki.leaf(commonName: "coxswain", usage: [.clientAuth])
        _ = try await withEchoServer(rejections: rejections) { port in
            await #expect(throws: (any Error).self) {
                _ = try await echo(port: port, identity: client.identity(), maximumVersion: .tlsv12)
            }
        }
    }

    @Test func clientTrustsOnlyOurRoots() async throws {
        let rejections = Rejections()
        let client = try pki.leaf(commonName: "coxswain", usage: [.clientAuth])
        let otherRoots = try TestPKI(name: "Elsewhere").roots()
        _ = try await withEchoServer(rejections: rejections) { port in
            await #expect(throws: (any Error).self) {
                _ = try await echo(port: port, identity: client.identity(), roots: otherRoots)
            }
        }
    }
}

@Suite struct TLSIdentityTests {
    @Test func refusesAKeyFileReadableByOthers() throws {
        let pki = try TestPKI()
        let leaf = try pki.leaf(commonName: "n", usage: [.serverAuth])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pharos-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let cert = dir.appendingPathComponent("node.crt").path, key = dir.appendingPathComponent("node.key").path
        try leaf.certificatePEM.write(toFile: cert, atomically: true, encoding: .utf8)
        try leaf.keyPEM.write(toFile: key, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: key)
        #expect(throws: TLSSetupError.keyFileTooOpen(path: key, mode: "644")) {
            _ = try TLSIdentity(certificatePath: cert, keyPath: key)
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key)
        let identity = try TLSIdentity(certificatePath: cert, keyPath: key)
        #expect(identity.certificates.count == 2)
    }

    @Test func refusesAKeyThatDoesNotMatch() throws {
        let pki = try TestPKI()
        let a = try pki.leaf(commonName: "a", usage: [.serverAuth]), b = try pki.leaf(commonName: "b", usage: [.serverAuth])
        #expect(throws: TLSSetupError.keyDoesNotMatchCertificate(source: "TLS identity")) {
            _ = try TLSIdentity(certificatePEM: a.certificatePEM, keyPEM: b.keyPEM)
        }
    }
}
