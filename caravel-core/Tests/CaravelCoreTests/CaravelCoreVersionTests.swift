import PharosSpec
import Testing
import CaravelCore

@Suite struct CaravelCoreVersionTests {
    @Test func versionNamesTheComponentAndTheWireContract() {
        #expect(CaravelCoreVersion.line == "caravel-core \(CaravelCoreVersion.component) (protocol-spec \(PharosSpec.version))")
    }
}
