import PharosSpec
import Testing
@testable import CoxCLI
import Coxswain

@Suite struct CoxCommandTests {
    @Test func versionNamesTheComponentAndTheWireContract() {
        #expect(CoxswainVersion.line == "cox \(CoxswainVersion.component) (protocol-spec \(PharosSpec.version))")
    }

    @Test func versionIsASubcommand() throws {
        #expect(try CoxCommand.parseAsRoot(["version"]) is VersionCommand)
    }

    @Test func unknownSubcommandsAreRefused() {
        #expect(throws: (any Error).self) { _ = try CoxCommand.parseAsRoot(["frobnicate"]) }
    }
}
