import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import PharosTLS
import PharosTestSupport
import Synchronization
import Testing

/// The front door on real sockets: mTLS on TCP, plaintext on a Unix socket behind it.
@Suite struct TLSFrontDoorTests {
    /// A plaintext echo server on a Unix socket that prefixes every reply, so a reply
    /// proves the bytes crossed the splice.
    func withUnixEchoServer(_ body: (String) async throws -> Void) async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pharos-fd-\(UUID().uuidString.prefix(8)).sock").path
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true) { child in
                child.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: child) }
            }
        let task = Task {
            try await server.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in inbound {
                        group.addTask {
                            try? await connection.executeThenClose { input, output in
                                for try await message in input {
                                    try await output.write(ByteBuffer(string: "upstream:" + String(buffer: message)))
                                }
                            }
                        }
                    }
                }
            }
        }
        defer { task.cancel() }
        try await body(path)
        try await server.channel.close()
    }

    @Test func splicesVerifiedConnectionsAndRefusesOthers() async throws {
        let pki = try TestPKI()
        let serverLeaf = try pki.leaf(commonName: "node-1", usage: [.serverAuth])
        let client = try pki.leaf(commonName: "coxswain", usage: [.clientAuth])
        let foreign = try TestPKI(name: "Elsewhere").leaf(commonName: "intruder", usage: [.clientAuth])
        let rejections = MutualTLSTests.Lines()
        let verifier = PeerVerifier(roots: try pki.roots(), requirements: PeerRequirements(usage: .clientAuth, issuers: [pki.fleet]),
                                    onRejection: rejections.record)
        try await withUnixEchoServer { path in
            let door = try await TLSFrontDoor.start(
                host: "127.0.0.1", port: 0,
                tls: PharosTLSConfiguration.server(identity: serverLeaf.identity(), roots: pki.roots()),
                verifier: verifier, upstreamSocketPath: path)
            let probe = try MutualTLSTests()
            let reply = try await probe.echo(port: door.port, identity: client.identity(), roots: pki.roots())
            #expect(reply == "upstream:ping")
            await #expect(throws: (any Error).self) {
                _ = try await probe.echo(port: door.port, identity: foreign.identity(), roots: pki.roots())
            }
            await #expect(throws: (any Error).self) {
                _ = try await probe.echo(port: door.port, identity: nil, roots: pki.roots())
            }
            try await door.close()
        }
        #expect(rejections.all.count == 1)
    }

    /// A leaf the deny list names loses the connections it already holds, not only the next
    /// handshake: the list closes them; another leaf's connection stays.
    @Test func aDenyListCutsTheConnectionsItsLeavesHold() async throws {
        let pki = try TestPKI()
        let serverLeaf = try pki.leaf(commonName: "node-1", usage: [.serverAuth])
        let leaked = try pki.leaf(commonName: "coxswain", usage: [.clientAuth])
        let current = try pki.leaf(commonName: "coxswain", usage: [.clientAuth])
        let denied = DeniedCertificates()
        let verifier = PeerVerifier(roots: try pki.roots(), requirements: PeerRequirements(usage: .clientAuth, issuers: [pki.fleet], denied: denied))
        try await withUnixEchoServer { path in
            let door = try await TLSFrontDoor.start(
                host: "127.0.0.1", port: 0,
                tls: PharosTLSConfiguration.server(identity: serverLeaf.identity(), roots: pki.roots()),
                verifier: verifier, upstreamSocketPath: path)
            let held = try await OpenConnection(port: door.port, identity: leaked.identity(), roots: pki.roots())
            let other = try await OpenConnection(port: door.port, identity: current.identity(), roots: pki.roots())
            #expect(try await held.echo("one") == "upstream:one")
            #expect(try await other.echo("one") == "upstream:one")
            #expect(denied.watchedCount == 2)

            denied.replace(with: [leaked.certificate.serialHex.uppercased()])
            #expect(try await held.closedWithin(.seconds(2)), "the revoked leaf kept its connection")
            #expect(try await other.echo("two") == "upstream:two")
            #expect(denied.watchedCount == 1)
            // And it cannot come back.
            await #expect(throws: (any Error).self) {
                _ = try await MutualTLSTests().echo(port: door.port, identity: leaked.identity(), roots: pki.roots())
            }
            try await other.close()
            for _ in 0..<50 where denied.watchedCount > 0 { try await Task.sleep(for: .milliseconds(20)) }
            #expect(denied.watchedCount == 0, "a closed connection stayed watched")
            try await door.close()
        }
    }

    @Test func aWatchOnAnAlreadyDeniedLeafClosesAtOnce() {
        let denied = DeniedCertificates(["AB01"])
        let closed = Mutex(0)
        #expect(denied.watch(serial: "ab01") { closed.withLock { $0 += 1 } } == nil)
        let id = denied.watch(serial: "cd02") { closed.withLock { $0 += 1 } }
        #expect(closed.withLock { $0 } == 1 && id != nil)
        denied.replace(with: ["ab01"])
        #expect(closed.withLock { $0 } == 1, "a list that does not name it leaves it open")
        denied.replace(with: ["ab01", "cd02"])
        denied.replace(with: ["cd02"])
        #expect(closed.withLock { $0 } == 2, "closed once, when named")
    }
}

/// A client TLS connection kept open across several exchanges (one test task uses it at a
/// time, hence unchecked).
final class OpenConnection: @unchecked Sendable {
    private let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    private var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator

    init(port: Int, identity: TLSIdentity, roots: TrustRoots) async throws {
        let context = try NIOSSLContext(configuration: PharosTLSConfiguration.client(identity: identity, roots: roots, minimumVersion: .tlsv13))
        channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: "localhost"))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        inbound = channel.inbound.makeAsyncIterator()
    }

    private func next() async throws -> ByteBuffer? { try await inbound.next() }

    func echo(_ text: String) async throws -> String {
        try await channel.outbound.write(ByteBuffer(string: text))
        guard let reply = try await next() else { throw ChannelError.eof }
        return String(buffer: reply)
    }

    /// Whether the server closed it within `timeout` (end of stream or a read error).
    func closedWithin(_ timeout: Duration) async throws -> Bool {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                do { return try await self.next() == nil } catch { return true }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return false
            }
            let first = try await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    func close() async throws { try await channel.channel.close() }

    // A connection the server cut (or one a test never closes) still owns its writer:
    // NIOAsyncWriter traps when it is deinited unfinished.
    deinit { channel.outbound.finish() }
}
