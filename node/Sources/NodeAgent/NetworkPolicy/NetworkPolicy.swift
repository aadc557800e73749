/// What SetNetworkConfig asks of the host: forwarding, isolation between clients, masquerade
/// out of the default route, and transit routes into inner links. `NetworkPolicyPlan` turns it
/// into commands.
public struct NetworkPolicy: Sendable, Equatable {
    /// Traffic from `deviceCIDR` on the tunnel leaves through `innerInterface` (a cascade hop):
    /// marked with `mark`, looked up in routing table `table`.
    public struct TransitRoute: Sendable, Equatable {
        public var deviceCIDR: String
        public var innerInterface: String
        public var mark: UInt32
        public var table: UInt32

        public init(deviceCIDR: String, innerInterface: String, mark: UInt32, table: UInt32) {
            self.deviceCIDR = deviceCIDR
            self.innerInterface = innerInterface
            self.mark = mark
            self.table = table
        }
    }

    public var forwarding: Bool
    public var masquerade: Bool
    public var isolation: Bool
    public var transits: [TransitRoute]

    public init(forwarding: Bool = false, masquerade: Bool = false, isolation: Bool = false, transits: [TransitRoute] = []) {
        self.forwarding = forwarding
        self.masquerade = masquerade
        self.isolation = isolation
        self.transits = transits
    }
}
