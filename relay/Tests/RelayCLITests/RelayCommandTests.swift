import PharosSpec
import Testing
@testable import RelayCLI
import Relay

@Suite struct RelayCommandTests {
    @Test func versionNamesTheComponentAndTheWireContract() {
        #expect(RelayVersion.line == "relay \(RelayVersion.component) (protocol-spec \(PharosSpec.version))")
    }

    @Test func versionIsASubcommand() throws {
        #expect(try RelayCommand.parseAsRoot(["version"]) is VersionCommand)
    }

    @Test func unknownSubcommandsAreRefused() {
        #expect(throws: (any Error).self) { _ = try RelayCommand.parseAsRoot(["frobnicate"]) }
    }
}
