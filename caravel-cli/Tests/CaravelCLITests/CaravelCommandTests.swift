import CaravelCore
import PharosSpec
import Testing
@testable import CaravelCLI

@Suite struct CaravelCommandTests {
    @Test func versionNamesTheClientTheCoreAndTheWireContract() {
        #expect(CaravelVersion.line == "caravel \(CaravelCoreVersion.component) (protocol-spec \(PharosSpec.version))")
    }

    @Test func versionIsASubcommand() throws {
        #expect(try CaravelCommand.parseAsRoot(["version"]) is VersionCommand)
    }

    @Test func unknownSubcommandsAreRefused() {
        #expect(throws: (any Error).self) { _ = try CaravelCommand.parseAsRoot(["frobnicate"]) }
    }
}
