import Testing
@testable import NodeAgent

@Suite struct NetworkPolicyPlanTests {
    func config(forwarding: Bool = true, masquerade: Bool = false, isolation: Bool = false,
                transits: [NetworkPolicy.TransitRoute] = []) -> NetworkPolicy {
        NetworkPolicy(forwarding: forwarding, masquerade: masquerade, isolation: isolation, transits: transits)
    }

    @Test func everythingNeedsForwarding() throws {
        #expect(throws: NetworkPolicyPlan.PlanError.requiresForwarding("masquerade")) {
            _ = try NetworkPolicyPlan.make(config(forwarding: false, masquerade: true), interface: "awg0", egress: "eth0")
        }
        #expect(throws: NetworkPolicyPlan.PlanError.requiresForwarding("isolation")) {
            _ = try NetworkPolicyPlan.make(config(forwarding: false, isolation: true), interface: "awg0", egress: "eth0")
        }
        #expect(try NetworkPolicyPlan.make(config(forwarding: false), interface: "awg0", egress: nil) == NetworkPolicyPlan())
    }

    @Test func upstreamRulesInOrderEachWithItsExactTeardown() throws {
        let plan = try NetworkPolicyPlan.make(config(masquerade: true, isolation: true), interface: "awg0", egress: "eth0")
        #expect(plan.sysctls == ["net/ipv4/conf/all/forwarding": "1", "net/ipv6/conf/all/forwarding": "1"])
        #expect(plan.steps.map { $0.apply.joined(separator: " ") } == [
            "iptables -I FORWARD 1 -i awg0 -o awg0 -j DROP",
            "iptables -A FORWARD -i awg0 -j ACCEPT",
            "iptables -A FORWARD -o awg0 -j ACCEPT",
            "iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE",
        ])
        for step in plan.steps {
            let undo = try #require(step.teardown)
            let expected = step.apply.map { $0 == "-A" || $0 == "-I" ? "-D" : $0 }.filter { $0 != "1" }
            #expect(undo == expected)
        }
    }

    @Test func transitsMarkRuleAndRoute() throws {
        var t = NetworkPolicy.TransitRoute(deviceCIDR: "10.86.0.5/32", innerInterface: "awg1", mark: 0x105, table: 105)
        let plan = try NetworkPolicyPlan.make(config(transits: [t]), interface: "awg0", egress: nil)
        #expect(plan.sysctls["net/ipv4/conf/all/rp_filter"] == "0")
        #expect(plan.steps.suffix(4).map { $0.apply.joined(separator: " ") } == [
            "iptables -t mangle -A PREROUTING -i awg0 -s 10.86.0.5/32 -j MARK --set-mark 261",
            "ip rule add fwmark 261 lookup 105",
            "ip route replace unreachable default metric 4294967295 table 105",
            "ip route replace default dev awg1 table 105",
        ])
        #expect(plan.steps.last?.teardown == ["ip", "route", "del", "default", "dev", "awg1", "table", "105"])
        t.deviceCIDR = "nonsense"
        #expect(throws: NetworkPolicyPlan.PlanError.self) {
            _ = try NetworkPolicyPlan.make(config(transits: [t]), interface: "awg0", egress: nil)
        }
        // The host's own tables, the tunnel itself, and names a command would read as a flag.
        for (table, inner) in [(254 as UInt32, "awg1"), (253, "awg1"), (255, "awg1"), (105, "awg0"), (105, "-x"), (105, "eth0;id")] {
            let bad = NetworkPolicy.TransitRoute(deviceCIDR: "10.86.0.5/32", innerInterface: inner, mark: 0x105, table: table)
            #expect(throws: NetworkPolicyPlan.PlanError.self, "table \(table) via \(inner)") {
                _ = try NetworkPolicyPlan.make(config(transits: [bad]), interface: "awg0", egress: nil)
            }
        }
    }

    @Test func masqueradeWithoutADefaultRouteIsAClearError() {
        #expect(throws: NetworkPolicyPlan.PlanError.noEgressInterface) {
            _ = try NetworkPolicyPlan.make(config(masquerade: true), interface: "awg0", egress: nil)
        }
    }
}
