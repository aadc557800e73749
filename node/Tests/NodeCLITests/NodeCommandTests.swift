import PharosSpec
import Testing
@testable import NodeCLI
import NodeAgent

@Suite struct NodeCommandTests {
    @Test func versionNamesTheComponentAndTheWireContract() {
        #expect(NodeAgentVersion.line == "node \(NodeAgentVersion.component) (protocol-spec \(PharosSpec.version))")
    }

    @Test func versionIsASubcommand() throws {
        #expect(try NodeCommand.parseAsRoot(["version"]) is VersionCommand)
        #expect(try NodeCommand.parseAsRoot(["gen-csr", "--config-dir", "/tmp/x"]) is GenCSRCommand)
    }

    @Test func unknownSubcommandsAreRefused() {
        #expect(throws: (any Error).self) { _ = try NodeCommand.parseAsRoot(["frobnicate"]) }
    }
}
