/// How the host reaches the tunnel's endpoint before the tunnel exists: the device and,
/// when the endpoint is off-link, the gateway. `TunnelPlan` pins the endpoint to it so the
/// tunnel's own packets keep that path once everything else goes into the tunnel.
public struct EndpointRoute: Sendable, Equatable {
    public var device: String
    public var gateway: String?

    public init(device: String, gateway: String? = nil) {
        self.device = device
        self.gateway = gateway
    }

    /// Reads the answer of `ip -4 route get ADDRESS`, e.g.
    /// `10.78.0.2 via 10.77.0.2 dev eth0 src 10.77.0.1 uid 0`; nil when it names no device.
    public init?(ipRouteGet output: String) {
        let words = output.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
        func value(after key: String) -> String? {
            words.firstIndex(of: key).flatMap { $0 + 1 < words.count ? words[$0 + 1] : nil }
        }
        guard let device = value(after: "dev") else { return nil }
        self.init(device: device, gateway: value(after: "via"))
    }
}
