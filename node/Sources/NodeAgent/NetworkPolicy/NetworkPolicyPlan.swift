import PharosSpec

/// What SetNetworkConfig does to the host, as data: each step is an argv to apply
/// and the argv that exactly undoes it. Pure, so the rules are tested without root;
/// `NetworkPolicyApplier` runs them. The rule strings follow upstream's.
public struct NetworkPolicyPlan: Sendable, Equatable, Codable {
    /// The transit route into `interface` (`ip route replace default dev IFACE table T`), if this step is one.
    static func routesInto(_ step: Step) -> String? {
        let a = step.apply
        guard a.count == 8, Array(a[0..<5]) == ["ip", "route", "replace", "default", "dev"] else { return nil }
        return a[5]
    }

    public struct Step: Sendable, Equatable, Codable {
        public var apply: [String]
        /// nil: nothing to undo (e.g. a sysctl whose old value is restored separately).
        public var teardown: [String]?

        public init(apply: [String], teardown: [String]?) {
            self.apply = apply
            self.teardown = teardown
        }
    }

    /// Sysctls written by this plan (path under /proc/sys → value); their previous
    /// values are remembered by the applier and restored when a plan stops setting them.
    public var sysctls: [String: String]
    public var steps: [Step]

    public init(sysctls: [String: String] = [:], steps: [Step] = []) {
        self.sysctls = sysctls
        self.steps = steps
    }

    public enum PlanError: Error, Equatable, CustomStringConvertible {
        case requiresForwarding(String)
        case noEgressInterface
        case invalidTransit(String)

        public var description: String {
            switch self {
            case .requiresForwarding(let what): "\(what) requires forwarding"
            case .noEgressInterface: "masquerade needs an egress interface, and this host has no default route"
            case .invalidTransit(let reason): "invalid transit route: \(reason)"
            }
        }
    }

    /// - Parameters: `interface` is the tunnel interface (`%i`); `egress` the default
    ///   route's interface (`%e`), needed only for masquerade.
    public static func make(_ policy: NetworkPolicy, interface: String,
                            egress: String?) throws(PlanError) -> NetworkPolicyPlan {
        var plan = NetworkPolicyPlan()
        guard policy.forwarding else {
            if policy.masquerade { throw .requiresForwarding("masquerade") }
            if policy.isolation { throw .requiresForwarding("isolation") }
            if !policy.transits.isEmpty { throw .requiresForwarding("a transit route") }
            return plan
        }
        plan.sysctls["net/ipv4/conf/all/forwarding"] = "1"
        plan.sysctls["net/ipv6/conf/all/forwarding"] = "1"
        if policy.isolation {
            plan.steps.append(Step(apply: ["iptables", "-I", "FORWARD", "1", "-i", interface, "-o", interface, "-j", "DROP"],
                                   teardown: ["iptables", "-D", "FORWARD", "-i", interface, "-o", interface, "-j", "DROP"]))
        }
        for direction in ["-i", "-o"] {
            plan.steps.append(Step(apply: ["iptables", "-A", "FORWARD", direction, interface, "-j", "ACCEPT"],
                                   teardown: ["iptables", "-D", "FORWARD", direction, interface, "-j", "ACCEPT"]))
        }
        if policy.masquerade {
            guard let egress else { throw .noEgressInterface }
            plan.steps.append(Step(apply: ["iptables", "-t", "nat", "-A", "POSTROUTING", "-o", egress, "-j", "MASQUERADE"],
                                   teardown: ["iptables", "-t", "nat", "-D", "POSTROUTING", "-o", egress, "-j", "MASQUERADE"]))
        }
        if !policy.transits.isEmpty {
            plan.sysctls["net/ipv4/conf/all/rp_filter"] = "0"
            plan.sysctls["net/ipv4/conf/default/rp_filter"] = "0"
        }
        for transit in policy.transits {
            guard CIDR.isValid(transit.deviceCIDR) else { throw .invalidTransit("device_cidr \"\(transit.deviceCIDR)\"") }
            guard InnerLink.isInterfaceName(transit.innerInterface), transit.innerInterface != interface else {
                throw .invalidTransit("inner_interface \"\(transit.innerInterface)\"")
            }
            guard transit.mark != 0, transit.table != 0 else { throw .invalidTransit("mark and table must be non-zero") }
            // 253-255 are the kernel's default, main and local tables: a transit must not replace their routes.
            guard !(253...255).contains(transit.table) else { throw .invalidTransit("table \(transit.table) is one of the host's own (253-255)") }
            let mark = String(transit.mark), table = String(transit.table)
            plan.steps.append(Step(
                apply: ["iptables", "-t", "mangle", "-A", "PREROUTING", "-i", interface, "-s", transit.deviceCIDR, "-j", "MARK", "--set-mark", mark],
                teardown: ["iptables", "-t", "mangle", "-D", "PREROUTING", "-i", interface, "-s", transit.deviceCIDR, "-j", "MARK", "--set-mark", mark]))
            plan.steps.append(Step(apply: ["ip", "rule", "add", "fwmark", mark, "lookup", table],
                                   teardown: ["ip", "rule", "del", "fwmark", mark, "lookup", table]))
            // Below the link's route, a route that drops: when the inner interface goes away (its
            // daemon died, the link is being restarted or removed), the kernel deletes the route
            // through it, and without this the lookup would fall through to the main table and
            // send the device's traffic out of this node instead of its exit.
            plan.steps.append(Step(apply: ["ip", "route", "replace", "unreachable", "default", "metric", "4294967295", "table", table],
                                   teardown: ["ip", "route", "del", "unreachable", "default", "metric", "4294967295", "table", table]))
            plan.steps.append(Step(apply: ["ip", "route", "replace", "default", "dev", transit.innerInterface, "table", table],
                                   teardown: ["ip", "route", "del", "default", "dev", transit.innerInterface, "table", table]))
        }
        return plan
    }
}
