import Testing
@testable import PharosSpec

@Suite struct ProfileBundleTests {
    @Test func readsTheVectorAndIgnoresUnknownProtocolTypes() throws {
        let bundle = try ProfileBundle(jsonBytes: Vectors.bytes("profile_bundle.json"))
        #expect(bundle.user == "ada@example.org")
        #expect(bundle.revision == 7)
        let profile = try #require(bundle.profiles.first)
        #expect(profile.protocolChoice == .both)
        #expect(profile.mtu == 1380)
        #expect(profile.path?.hops.first?.role == "entry")
        let node = try #require(profile.nodes.first)
        #expect(node.protocols.count == 2, "the wireguard-quantum entry must be dropped, not fail")
        guard case .amneziaWG(let awg) = node.protocols[0] else { Issue.record("first protocol is not AmneziaWG"); return }
        #expect(awg.obfuscation.h4 == 44444)
        #expect(awg.endpoints == [EndpointPool(ip: "198.51.100.10", portMin: 2000, portMax: 60000)])
        #expect(bundle.control?.latitude == 52.3676)
    }

    @Test func roundTrip() throws {
        let bundle = try ProfileBundle(jsonBytes: Vectors.bytes("profile_bundle.json"))
        #expect(try ProfileBundle(jsonBytes: bundle.json.compactBytes()) == bundle)
        #expect(try ProfileBundle(jsonBytes: bundle.json.indentedBytes()) == bundle)
    }

    @Test func readsTheOlderTopLevelNodesLayout() throws {
        let legacy = #"{"fleet_id":"f","user":"u","revision":3,"issued_at":"","expires_at":"","nodes":[{"id":"n1","name":"a","region":"r","endpoints":["198.51.100.1"],"protocols":[]}]}"#
        let bundle = try ProfileBundle(jsonBytes: Array(legacy.utf8))
        #expect(bundle.profiles.count == 1)
        #expect(bundle.profiles[0].nodes.map(\.id) == ["n1"])
    }

    @Test func badProtocolChoiceIsNamed() {
        let text = #"{"profiles":[{"id":"p","name":"n","protocol":"carrier-pigeon","nodes":[]}]}"#
        let error = #expect(throws: PharosFormatError.self) { _ = try ProfileBundle(jsonBytes: Array(text.utf8)) }
        #expect(error?.description.contains("carrier-pigeon") == true)
    }
}
