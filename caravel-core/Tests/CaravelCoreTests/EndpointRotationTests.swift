import PharosSpec
import Testing
@testable import CaravelCore

/// #25: the client half of the controller's rotation policy (upstream's M29).
@Suite struct EndpointRotationTests {
    /// A deterministic generator (SplitMix64), so the draws below are repeatable.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func params(_ pool: [EndpointPool], _ rotation: RotationPolicy?) -> AmneziaWGParams {
        AmneziaWGParams(privateKey: "", address: "10.99.0.2/32", publicKey: "", presharedKey: "", endpoints: pool, rotation: rotation,
                        allowedIPs: [], obfuscation: Obfuscation())
    }

    static let on = RotationPolicy(enabled: true, intervalSeconds: 600, jitterSeconds: 120)
    static let three = ["198.51.100.1", "198.51.100.2", "198.51.100.3"].map { EndpointPool(ip: $0, portMin: 443, portMax: 443) }

    @Test func noPolicyADisabledOneOrNowhereElseToGoMeansNoRotation() {
        #expect(EndpointRotation(Self.params(Self.three, nil)) == nil)
        #expect(EndpointRotation(Self.params(Self.three, RotationPolicy(enabled: false, intervalSeconds: 600, jitterSeconds: 0))) == nil)
        #expect(EndpointRotation(Self.params([EndpointPool(ip: "198.51.100.1", portMin: 443, portMax: 443)], Self.on)) == nil)
        #expect(EndpointRotation(Self.params([EndpointPool(ip: "", portMin: 1, portMax: 9)], Self.on)) == nil)
        #expect(EndpointRotation(Self.params([EndpointPool(ip: "198.51.100.1", portMin: 0, portMax: 70000)], Self.on)) == nil)
        #expect(EndpointRotation(Self.params(Self.three, Self.on)) != nil)
    }

    @Test func everyMoveGoesToAnotherAddressAndReachesAllOfThem() throws {
        let rotation = try #require(EndpointRotation(Self.params(Self.three, Self.on)))
        var rng = Seeded(state: 7)
        var seen = Set<String>(), host = "198.51.100.1"
        for _ in 0..<60 {
            let next = rotation.next(after: host, port: 443, using: &rng)
            #expect(next.host != host && next.port == 443)
            seen.insert(next.host)
            host = next.host
        }
        #expect(seen == Set(Self.three.map(\.ip)))
    }

    @Test func oneAddressWithAPortRangeMovesToAnotherPortOfIt() throws {
        let rotation = try #require(EndpointRotation(Self.params([EndpointPool(ip: "198.51.100.1", portMin: 2000, portMax: 2002)], Self.on)))
        var rng = Seeded(state: 11)
        var port = 2001, seen = Set<Int>()
        for _ in 0..<40 {
            let next = rotation.next(after: "198.51.100.1", port: port, using: &rng)
            #expect(next.host == "198.51.100.1" && next.port != port && (2000...2002).contains(next.port))
            seen.insert(next.port)
            port = next.port
        }
        #expect(seen == [2000, 2001, 2002])
    }

    @Test func delaysStayWithinIntervalPlusOrMinusJitterAndAboveTheFloor() throws {
        let rotation = try #require(EndpointRotation(Self.params(Self.three, Self.on)))
        var rng = Seeded(state: 3)
        let delays = (0..<500).map { _ in rotation.nextDelay(using: &rng) }
        #expect(delays.allSatisfy { $0 >= .seconds(480) && $0 <= .seconds(720) })
        #expect(delays.min()! < .seconds(500) && delays.max()! > .seconds(700), "the jitter is used")

        // A broken policy (zero interval, jitter larger than it) cannot make the client spin.
        let broken = try #require(EndpointRotation(Self.params(Self.three, RotationPolicy(enabled: true, intervalSeconds: 0, jitterSeconds: 50))))
        #expect(broken.intervalSeconds == EndpointRotation.minimumIntervalSeconds && broken.jitterSeconds == 0)
        #expect((0..<50).allSatisfy { _ in broken.nextDelay(using: &rng) == .seconds(EndpointRotation.minimumIntervalSeconds) })
    }
}
