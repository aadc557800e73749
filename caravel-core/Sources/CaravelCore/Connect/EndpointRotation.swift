import PharosSpec

/// The client half of the endpoint rotation policy the controller puts into each AmneziaWG
/// profile (`rotation {enabled, interval_seconds, jitter_seconds}`, upstream's M29; upstream's
/// client ignores it): every interval ± jitter, the tunnel moves to another entry endpoint of
/// the same node. WireGuard sessions are not bound to an address, so the move costs no
/// handshake; an observer sees the flow hop between the node's addresses.
public struct EndpointRotation: Sendable, Equatable {
    /// A bundle's interval is the controller's to choose (`fleet.rotation.interval_seconds`,
    /// at least 10 s there); below this a hostile or broken one would only spin.
    public static let minimumIntervalSeconds = 1

    public var intervalSeconds: Int
    public var jitterSeconds: Int
    /// Only usable entries, each once: an address, and a port range inside 1...65535 with
    /// `portMin <= portMax`.
    public var pool: [EndpointPool]

    /// nil when the profile does not ask for rotation, or offers nowhere else to go.
    public init?(_ params: AmneziaWGParams) {
        guard let policy = params.rotation, policy.enabled else { return nil }
        // Ordered once here; a pool naming one address twice has nowhere else to go.
        var seen = Set<String>()
        pool = params.endpoints
            .map { EndpointPool(ip: $0.ip, portMin: min($0.portMin, $0.portMax), portMax: max($0.portMin, $0.portMax)) }
            .filter { !$0.ip.isEmpty && $0.portMin >= 1 && $0.portMax <= 65535 && seen.insert("\($0.ip) \($0.portMin) \($0.portMax)").inserted }
        intervalSeconds = max(Self.minimumIntervalSeconds, policy.intervalSeconds)
        jitterSeconds = max(0, min(policy.jitterSeconds, intervalSeconds - Self.minimumIntervalSeconds))
        guard choices > 1 else { return nil }
    }

    /// The same policy over the pool entries whose address is in `hosts`; nil when that
    /// leaves nowhere else to go.
    public func restricted(to hosts: Set<String>) -> EndpointRotation? {
        var narrowed = self
        narrowed.pool = pool.filter { hosts.contains($0.ip) }
        return narrowed.choices > 1 ? narrowed : nil
    }

    var choices: Int { pool.reduce(0) { $0 + $1.portMax - $1.portMin + 1 } }

    /// How long until the next move: uniform in interval ± jitter (never under the minimum).
    public func nextDelay<R: RandomNumberGenerator>(using rng: inout R) -> Duration {
        let seconds = intervalSeconds + (jitterSeconds > 0 ? Int.random(in: -jitterSeconds...jitterSeconds, using: &rng) : 0)
        return .seconds(max(Self.minimumIntervalSeconds, seconds))
    }

    /// Where to move from `host:port`: another address of the pool when there is one (at
    /// random, with a random port in its range), else another port of the same range.
    public func next<R: RandomNumberGenerator>(after host: String, port: Int, using rng: inout R) -> (host: String, port: Int) {
        let others = pool.filter { $0.ip != host }
        if let entry = others.randomElement(using: &rng) {
            return (entry.ip, Int.random(in: entry.portMin...entry.portMax, using: &rng))
        }
        guard let entry = pool.filter({ $0.portMin < $0.portMax }).randomElement(using: &rng) else { return (host, port) }
        var next = Int.random(in: entry.portMin...(entry.portMax - 1), using: &rng)
        if next >= port, (entry.portMin...entry.portMax).contains(port) { next += 1 }
        return (entry.ip, next)
    }

    /// Every address the tunnel may move to, the first endpoint's included: with the default
    /// route each is pinned to its present path before the tunnel takes the routes.
    public var hosts: [String] {
        var seen = Set<String>()
        return pool.map(\.ip).filter { seen.insert($0).inserted }
    }
}
