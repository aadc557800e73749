import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import PharosTLS
import PharosTestSupport
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
}
