import PharosProto

/// SetNetworkConfig's `NetworkConfig` → `NetworkPolicy`, field for field; the plan validates.
extension NetworkPolicy {
    init(_ proto: Pharos_Node_V1_NetworkConfig) {
        self.init(forwarding: proto.forwarding, masquerade: proto.masquerade, isolation: proto.isolation,
                  transits: proto.transits.map {
                      TransitRoute(deviceCIDR: $0.deviceCidr, innerInterface: $0.innerInterface, mark: $0.mark, table: $0.table)
                  })
    }
}
