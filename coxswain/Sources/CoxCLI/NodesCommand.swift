import ArgumentParser
import Coxswain
import Foundation

struct NodesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes", abstract: "Enroll, inspect, push to and remove VPN nodes.",
        subcommands: [Add.self, Enroll.self, List.self, Status.self, Push.self, Endpoints.self, Renew.self, Update.self, Start.self,
                      Stop.self, Remove.self])

    struct Enroll: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign a CSR made by `node gen-csr` and write node.crt + ca.crt for the node's config dir.")

        @Option(help: "The CSR file (PEM) printed by `node gen-csr`.") var csr: String
        @Option(help: "HOST:PORT the controller dials (port 8444 when omitted); becomes the certificate's SAN.") var addr: String
        @Option(help: "Name shown in lists (default: the host).") var name: String?
        @Option(help: "Region label.") var region = ""
        @Option(help: "UDP port clients reach AmneziaWG on (the node's dataplane.listen_port).") var wgPort = 443
        @Option(help: "Directory to write node.crt and ca.crt into (default ./<name>).") var out: String?
        @Option(help: "Lifetime of the node's leaves in days; the controller renews them at two thirds of it, at most 20 days in. Up to 365 for an upstream agent, which cannot renew.")
        var certDays = FleetService.nodeCertificateDays
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let controller = try options.open()
                let enrolled = try await controller.service.enrollNode(csrPEM: try EnrollmentFiles.readCSR(csr), controlAddress: addr,
                                                                       name: name, region: region, wgPort: wgPort,
                                                                       certificateDays: certDays, by: .cliUser)
                let dir = out ?? enrolled.node.name
                try EnrollmentFiles.write(["node.crt": enrolled.certificateChainPEM, "ca.crt": enrolled.rootPEM], into: dir)
                print("enrolled \(enrolled.node.id) (\(enrolled.node.name)) at \(enrolled.node.controlAddr)")
                print("wrote \(dir)/node.crt and \(dir)/ca.crt: copy them to the node's config dir (/etc/pharos/node), then")
                print("  cox nodes status \(enrolled.node.id)   # caches its keys; devices are placed on it after that")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List nodes, their revisions and certificates (RENEWAL: renewed, unsupported = an upstream agent that keeps its enrolled leaf, failed).")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let controller = try options.open()
                let rows = try await controller.store.read { tx in
                    let certificates = Dictionary(try tx.nodeCertificates().map { ($0.nodeID, $0) }, uniquingKeysWith: { a, _ in a })
                    return try tx.nodes().map { ($0, try tx.peerCount(node: $0.id), certificates[$0.id]) }
                }
                print(Table.render(header: ["ID", "NAME", "REGION", "ADDR", "STATUS", "REVISION", "APPLIED", "PEERS", "AGENT",
                                            "CERT EXPIRES", "RENEWAL"],
                                   rows: rows.map { node, peers, certificate in
                                       [node.id, node.name, node.region, node.controlAddr, node.status.rawValue,
                                        "\(node.configRevision)", "\(node.appliedRevision)", "\(peers)", node.agentVersion,
                                        certificate.map { PKIFormat.day($0.notAfter) } ?? "-",
                                        certificate.map { $0.renewal.isEmpty ? "due \(PKIFormat.day($0.renewAt))" : String($0.renewal.prefix(60)) } ?? "-"]
                                   }))
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Ask a node for its status (GetStatus) and cache its keys.")
        @Argument(help: "Node ID or name.") var node: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let controller = try options.open()
                let record = try await controller.store.read { tx in try tx.node(node) }
                let status = try await controller.withReconciler(logger: CoxLogging.cli) { try await $0.refreshStatus(node: record.id) }
                print("node \(record.id) (\(record.name)) at \(record.controlAddr)")
                print("  agent: \(status.agentVersion), up \(status.uptimeSeconds) s, applied revision \(status.appliedRevision) (intended \(record.configRevision))")
                print("  amneziawg key: \(status.amneziawg.publicKey)")
                if !status.xray.publicKey.isEmpty { print("  reality key: \(status.xray.publicKey)") }
                for service in status.services {
                    print("  \(service.protocol): running=\(service.running) listening=\(service.listening) peers=\(service.peerCount) handshaking=\(service.handshakingPeers) \(service.detail)")
                }
            }
        }
    }

    struct Push: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Push a node's full intended config now.")
        @Argument(help: "Node ID or name.") var node: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let result = try await options.open().service.pushNow(node, by: .cliUser)
                let outcome = result.pushes[result.value.id] ?? .failed("not pushed")
                print(PushReport.line(node: result.value.name, outcome))
                if case .failed = outcome { throw ExitCode(1) }
            }
        }
    }

    struct Endpoints: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show or set a node's extra entry addresses (clients pick one per connect and rotate between them).",
            discussion: """
            The node's own public address always comes first. Setting the list reseals the bundle of every device \
            placed on the node and pushes it; an empty string ("") removes every extra address. With \
            fleet.rotation.enabled in cox.yaml, caravel moves between the addresses every interval ± jitter.
            """)
        @Argument(help: "Node ID or name.") var node: String
        @Argument(help: "Comma-separated IPv4 addresses, e.g. 203.0.113.7,203.0.113.8.") var addresses: String?
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let controller = try options.open()
                let record = try await controller.store.read { tx in try tx.node(node) }
                guard let addresses else {
                    let main = record.publicIP.isEmpty ? record.host : record.publicIP
                    let extra = record.endpointIPs.split(separator: ",").map(String.init).filter { $0 != main }
                    print(([main] + extra).joined(separator: "\n"))
                    return
                }
                let edit = try await controller.service.updateNode(record.id, FleetService.NodePatch(endpointIPs: addresses),
                                                                   expectedVersion: record.version, by: .cliUser)
                let list = edit.node.endpointIPs.isEmpty ? "none" : edit.node.endpointIPs
                print("\(edit.node.name): extra entry addresses \(list); \(edit.affectedNodes.count) node(s) to push")
                try await PushReport.report(edit.pushes, from: controller)
            }
        }
    }

    struct Renew: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Renew a node's certificate now (cox serve does it by itself at two thirds of its life).")
        @Argument(help: "Node ID or name.") var node: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let controller = try options.open()
                let (record, certificate) = try await controller.store.read { tx in
                    let record = try tx.node(node)
                    return (record, try tx.nodeCertificates(node: record.id).first)
                }
                guard let certificate else { throw ValidationError("node \(record.name) has no certificate in the store: enroll it again") }
                switch try await controller.withRenewer(logger: CoxLogging.cli, { await $0.renew(record, certificate: certificate, force: true) }) {
                case .renewed(let serial, let notAfter):
                    print("renewed \(record.name): serial \(serial), expires \(PKIFormat.day(notAfter)) (was \(certificate.serial))")
                case .unsupported:
                    print("\(record.name) cannot renew its certificate (an upstream agent): it keeps the leaf that expires \(PKIFormat.day(certificate.notAfter))")
                    throw ExitCode(1)
                case .failed(let reason):
                    print("\(record.name): renewal failed: \(reason)")
                    throw ExitCode(1)
                case .notDue(let at):
                    print("\(record.name): not due before \(PKIFormat.day(at))")
                }
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rm", abstract: "Remove a node; its devices get new bundles.",
            discussion: """
            A node added with `cox nodes add` is first stopped and disabled on its host over SSH, and its certificates \
            removed there (the package stays: `apt-get purge pharos-node` there removes it and the node's key). When its \
            host cannot be reached, nothing is removed unless --keep-agent is given.
            """,
            aliases: ["remove"])
        @Argument(help: "Node ID or name.") var node: String
        @Flag(help: "Remove it from the controller without stopping its agent over SSH (a dead host).") var keepAgent = false
        @OptionGroup var options: ConfigOption

        func run() async throws {
            if !keepAgent { try await AgentCommands.uninstall(.node, node, options) }
            try await PushReport.commit(options, { try await $0.service.removeNode(node, by: .cliUser) }) {
                "removed node \($0.id) (\($0.name)); its certificate is revoked"
            }
        }
    }
}

/// After a committed mutation: push the affected nodes and say what happened to each.
enum PushReport {
    /// The shape of every mutating command: commit, say what was committed, push.
    static func commit<Value: Sendable>(_ options: ConfigOption, _ mutation: (Controller) async throws -> MutationResult<Value>,
                                        describe: (Value) -> String) async throws {
        try await userFacing {
            let controller = try options.open()
            let result = try await mutation(controller)
            print(describe(result.value))
            try await report(result.pushes, from: controller)
        }
    }

    /// A batch's deferred push (the controller was opened with `pushing: false`).
    static func push(_ nodes: Set<String>, with controller: Controller) async throws {
        guard !nodes.isEmpty else { return }
        try await report(await CommandEffects(controller: controller, logger: CoxLogging.cli).push(nodes), from: controller)
    }

    static func report(_ outcomes: [String: FleetReconciler.Outcome], from controller: Controller) async throws {
        guard !outcomes.isEmpty else { return }
        let names = try await controller.store.read { tx in
            Dictionary(uniqueKeysWithValues: try tx.nodes().map { ($0.id, $0.name) })
        }
        for (nodeID, outcome) in outcomes.sorted(by: { $0.key < $1.key }) {
            print(line(node: names[nodeID] ?? nodeID, outcome))
        }
    }

    static func line(node: String, _ outcome: FleetReconciler.Outcome) -> String {
        switch outcome {
        case .applied(let revision): "  \(node): applied revision \(revision)"
        case .upToDate(let revision): "  \(node): already at revision \(revision)"
        case .nodeAhead(let applied): "  \(node): serves a newer revision (\(applied)); left as is"
        case .failed(let reason): "  \(node): not reached (\(reason)); committed, the sweep of `cox serve` delivers it"
        case .backingOff: "  \(node): backing off after failures; the sweep retries"
        case .removed: "  \(node): removed"
        }
    }
}

/// Plain aligned columns.
enum Table {
    static func render(header: [String], rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }
}
