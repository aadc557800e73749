import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import PharosProto
import PharosRuntime
import PharosSpec
import PharosTestSupport
import PharosTLS
import Testing
import X509
@testable import NodeAgent

/// Issue #20: the controller renews a node's leaf over the control port (BeginRenewal →
/// sign → InstallCertificate) and revokes controller leaves (SetDeniedCertificates). Real
/// mTLS on loopback; what the port presents afterwards is read by the real `openssl`.
@Suite struct NodeRenewalTests {
    typealias Lifecycle = Pharos_Lifecycle_V1_NodeLifecycle.Client<HTTP2ClientTransport.Posix>
    typealias Control = Pharos_Node_V1_NodeControl.Client<HTTP2ClientTransport.Posix>

    static let month: TimeInterval = 30 * 86400

    /// The public key of a CSR, once its self-signature holds.
    static func key(ofCSR pem: String) throws -> Certificate.PublicKey {
        let csr = try CertificateSigningRequest(pemEncoded: pem)
        #expect(csr.publicKey.isValidSignature(csr.signature, for: csr))
        return csr.publicKey
    }

    /// The serial of the leaf the control port presents to a new connection, as `openssl
    /// s_client` (with a controller leaf, since the port wants one) sees it.
    static func presentedSerial(_ node: ControlPlaneTests.Node) throws -> String {
        let controller = try node.pki.controllerLeaf()
        return try OpenSSLProbe.presentedSerial(port: node.port, clientChainPEM: controller.certificatePEM,
                                                clientKeyPEM: controller.keyPEM, rootPEM: try node.pki.rootPEM)
    }

    @Test func renewalKeepsTheOpenConnectionAndNewHandshakesPresentTheNewLeaf() async throws {
        let node = try await ControlPlaneTests.startNode()
        let enrolled = try TLSIdentity(certificatePath: "\(node.dir)/node.crt", keyPath: "\(node.dir)/node.key").leaf
        #expect(try Self.presentedSerial(node) == enrolled.serialHex)
        let paths = NodePaths(directory: node.dir)
        let installed = try await ControlPlaneTests.withConnection(pki: node.pki, port: node.port, leaf: try node.pki.controllerLeaf()) { client in
            let lifecycle = Lifecycle(wrapping: client), control = Control(wrapping: client)
            let begun = try await lifecycle.beginRenewal(.init())
            #expect(begun.currentSerial == enrolled.serialHex)
            #expect(begun.currentNotAfterUnix == Int64(enrolled.notValidAfter.timeIntervalSince1970))
            #expect(try Support.mode(paths.pendingKey) == 0o600)
            let renewed = try node.pki.leaf(commonName: "node-1", usage: [.serverAuth], notValidAfter: Date() + Self.month,
                                            publicKey: try Self.key(ofCSR: begun.csrPem))
            let installed = try await lifecycle.installCertificate(.with { $0.certificateChainPem = renewed.certificatePEM })
            #expect(installed.serial == renewed.certificate.serialHex)
            // The connection the renewal came over still carries calls.
            #expect(try await control.getStatus(.init()).agentVersion == "node test")
            return renewed.certificate
        }
        #expect(installed.publicKey != enrolled.publicKey, "renewal must put a fresh key in service")
        #expect(try Self.presentedSerial(node) == installed.serialHex)
        #expect(try Support.mode(paths.renewedIdentity) == 0o600)
        #expect(!FileManager.default.fileExists(atPath: paths.pendingKey))
        // node.crt, the operator's file, is untouched; a restart presents the renewed leaf.
        #expect(try TLSIdentity(certificatePath: paths.certificate, keyPath: paths.key).leaf == enrolled)
        await node.stop(keepingFiles: true)
        let restarted = try await ControlPlaneTests.startNode(restarting: (node.pki, node.dir))
        #expect(try Self.presentedSerial(restarted) == installed.serialHex)
        await restarted.stop()
    }

    @Test func installRefusesEveryChainThatIsNotOurRenewal() async throws {
        let pki = try TestPKI()
        let dir = try Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try pki.leaf(commonName: "node-1", usage: [.serverAuth]).write(to: dir, name: "node")
        try pki.rootPEM.write(toFile: "\(dir)/ca.crt", atomically: true, encoding: .utf8)
        let paths = NodePaths(directory: dir)
        let certificates = try NodeCertificates(paths: paths, logger: Support.logger)
        let enrolledSerial = await certificates.identity.leaf.serialHex

        let early = try pki.leaf(commonName: "node-1", usage: [.serverAuth])
        await #expect(throws: NodeCertificates.Failure.noPendingKey) { try await certificates.install(chainPEM: early.certificatePEM) }

        let key = try Self.key(ofCSR: try await certificates.beginRenewal().csrPEM)
        // A forged Fleet CA carries the same names as ours; only its key differs.
        let forged = try TestPKI()
        let hostile: [(String, String, NodeCertificates.Failure?)] = [
            ("a leaf for another key", early.certificatePEM, .wrongKey),
            ("another node's ID", try pki.leaf(commonName: "node-2", usage: [.serverAuth], publicKey: key).certificatePEM, nil),
            ("a forged Fleet CA", try forged.leaf(commonName: "node-1", usage: [.serverAuth], publicKey: key).certificatePEM, nil),
            ("the Device CA", try pki.leaf(commonName: "node-1", usage: [.serverAuth], issuer: .device, publicKey: key).certificatePEM, nil),
            ("expired", try pki.leaf(commonName: "node-1", usage: [.serverAuth], notValidBefore: Date() - 7200,
                                     notValidAfter: Date() - 3600, publicKey: key).certificatePEM, nil),
            ("client auth only", try pki.leaf(commonName: "node-1", usage: [.clientAuth], publicKey: key).certificatePEM, nil),
            ("a relay's O", try pki.leaf(commonName: "node-1", organization: "PharosVPN Relay", usage: [.serverAuth],
                                         publicKey: key).certificatePEM, nil),
            ("no chain at all", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", nil),
        ]
        for (name, chain, expected) in hostile {
            do {
                _ = try await certificates.install(chainPEM: chain)
                Issue.record("\(name) was installed")
            } catch {
                if let expected { #expect(error == expected, "\(name)") } else {
                    switch error {
                    case .refused, .unreadableChain: break
                    default: Issue.record("\(name): \(error)")
                    }
                }
            }
        }
        #expect(await certificates.identity.leaf.serialHex == enrolledSerial)
        #expect(!FileManager.default.fileExists(atPath: paths.renewedIdentity))

        let good = try pki.leaf(commonName: "node-1", usage: [.serverAuth], notValidAfter: Date() + Self.month, publicKey: key)
        #expect(try await certificates.install(chainPEM: good.certificatePEM) == good.certificate)
        // The pending key is spent: the same chain cannot be installed twice.
        await #expect(throws: NodeCertificates.Failure.noPendingKey) { try await certificates.install(chainPEM: good.certificatePEM) }
    }

    @Test func aDamagedOrOlderRenewedFileYieldsToTheEnrolledLeaf() async throws {
        let pki = try TestPKI()
        let dir = try Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let enrolled = try pki.leaf(commonName: "node-1", usage: [.serverAuth])
        try enrolled.write(to: dir, name: "node")
        try pki.rootPEM.write(toFile: "\(dir)/ca.crt", atomically: true, encoding: .utf8)
        let paths = NodePaths(directory: dir)

        try AtomicFile.write(Array("not a certificate".utf8), to: paths.renewedIdentity)
        #expect(try NodeCertificates.loadIdentity(paths: paths, logger: Support.logger).leaf == enrolled.certificate)

        // Issued before the enrolled leaf (the operator re-enrolled since): the enrolled one wins.
        let older = try pki.leaf(commonName: "node-1", usage: [.serverAuth], notValidBefore: Date() - 86400)
        try RenewedIdentityFile.write(keyPEM: older.keyPEM, chainPEM: older.certificatePEM, to: paths.renewedIdentity)
        #expect(try NodeCertificates.loadIdentity(paths: paths, logger: Support.logger).leaf == enrolled.certificate)

        let newer = try pki.leaf(commonName: "node-1", usage: [.serverAuth], notValidBefore: Date())
        try RenewedIdentityFile.write(keyPEM: newer.keyPEM, chainPEM: newer.certificatePEM, to: paths.renewedIdentity)
        #expect(try NodeCertificates.loadIdentity(paths: paths, logger: Support.logger).leaf == newer.certificate)
    }

    @Test func aRevokedControllerLeafIsRefusedAtTheHandshakeAlsoAfterARestart() async throws {
        let node = try await ControlPlaneTests.startNode()
        let (leaked, current) = (try node.pki.controllerLeaf(), try node.pki.controllerLeaf())
        func status(_ node: ControlPlaneTests.Node, _ leaf: TestPKI.Leaf) async throws -> String {
            try await ControlPlaneTests.withController(node, leaf: leaf) { control in
                var options = CallOptions.defaults
                options.timeout = .seconds(5)
                return try await control.getStatus(.init(), options: options).agentVersion
            }
        }
        #expect(try await status(node, leaked) == "node test")
        // The leaked leaf holds a connection while the list arrives over another: it loses it.
        try await ControlPlaneTests.withController(node, leaf: leaked) { held in
            var options = CallOptions.defaults
            options.timeout = .seconds(5)
            #expect(try await held.getStatus(.init(), options: options).agentVersion == "node test")
            try await ControlPlaneTests.withConnection(pki: node.pki, port: node.port, leaf: current) { client in
                let lifecycle = Lifecycle(wrapping: client)
                let bad = await #expect(throws: RPCError.self) { _ = try await lifecycle.setDeniedCertificates(.with { $0.serials = ["not-hex"] }) }
                #expect(bad?.code == .invalidArgument)
                let set = try await lifecycle.setDeniedCertificates(.with { $0.serials = [leaked.certificate.serialHex.uppercased()] })
                #expect(set.count == 1)
            }
            await #expect(throws: (any Error).self, "the revoked leaf's open connection still answered") {
                _ = try await held.getStatus(.init(), options: options)
            }
        }
        await #expect(throws: (any Error).self, "a revoked controller leaf was let in") { _ = try await status(node, leaked) }
        #expect(try await status(node, current) == "node test")
        #expect(try Support.mode(NodePaths(directory: node.dir).deniedControllers) == 0o600)

        await node.stop(keepingFiles: true)
        let restarted = try await ControlPlaneTests.startNode(restarting: (node.pki, node.dir))
        await #expect(throws: (any Error).self, "the deny list did not survive a restart") { _ = try await status(restarted, leaked) }
        #expect(try await status(restarted, current) == "node test")
        await restarted.stop()
    }
}
