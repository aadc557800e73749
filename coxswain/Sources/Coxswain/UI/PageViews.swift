import Foundation
import Hummingbird

/// What each page shows, read in one store transaction and handed to its template as plain
/// values (the templates escape them).
extension AdminAPI {
    func overviewPage(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let (nodes, relays, users, devices, alerts) = try await store.read { tx in
            (try tx.nodeOverviews(NodeQuery(limit: 1000)).items, try tx.relays(), try tx.count(of: "users"),
             try tx.count(of: "devices"), try tx.alerts(AlertQuery(status: .open, limit: 1)).total)
        }
        let tunnels = relayTier?.tunnelStates ?? [:]
        let active = nodes.filter { $0.node.status == .active }.count
        let stats: [[String: Any]] = [
            ["value": "\(active) / \(nodes.count)", "label": "nodes active"], ["value": users, "label": "users"],
            ["value": devices, "label": "devices"], ["value": alerts, "label": "open alerts"],
        ]
        return pages.render("overview", title: "Fleet", path: "/ui/", principal: context.principal, request: request, live: true, values: [
            "stats": stats,
            "nodes": nodes.map { o -> [String: Any] in
                ["id": o.node.id, "name": o.node.name, "controlAddr": o.node.controlAddr, "region": o.node.region,
                 "status": o.node.status.rawValue, "appliedRevision": o.node.appliedRevision, "configRevision": o.node.configRevision,
                 "peers": o.peers, "lastHandshake": AdminPages.time(o.lastHandshakeAt), "lastError": o.node.lastError]
            },
            "relays": relays.map { r -> [String: Any] in
                ["name": r.name, "endpoint": r.endpoint, "publicAddr": r.publicAddr,
                 "tunnel": tunnels[r.id].map { $0 ? "up" : "down" } ?? "not dialed", "certificate": r.renewalNote]
            },
            "embedded": relayTier?.embeddedListening ?? false,
        ])
    }

    func usersPage(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let (users, devices) = try await store.read { tx in (try tx.users(), try tx.devices()) }
        let byUser = Dictionary(grouping: devices, by: \.userID)
        let csrf = context.principal?.csrfToken ?? ""
        return pages.render("users", title: "Users", path: "/ui/users", principal: context.principal, request: request, values: [
            "users": users.map { u -> [String: Any] in
                ["id": u.id, "name": u.name, "email": u.email ?? "", "role": u.role.rawValue, "status": u.status.rawValue, "csrf": csrf,
                 "devices": (byUser[u.id] ?? []).map { ["name": $0.name, "platform": $0.platform, "tunnelIP": $0.tunnelIP] }]
            },
        ])
    }

    func profilesPage(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let (specs, users, nodes, devices) = try await store.read { tx in
            (try tx.profileSpecs(), try tx.users(), try tx.nodes(), try tx.devices())
        }
        let userNames = Dictionary(uniqueKeysWithValues: users.map { ($0.id, $0.email ?? $0.name) })
        let nodeNames = Dictionary(uniqueKeysWithValues: nodes.map { ($0.id, $0.name) })
        let deviceNames = Dictionary(uniqueKeysWithValues: devices.map { ($0.id, $0.name) })
        let csrf = context.principal?.csrfToken ?? ""
        return pages.render("profiles", title: "Profiles", path: "/ui/profiles", principal: context.principal, request: request, values: [
            "profiles": specs.map { s -> [String: Any] in
                ["id": s.id, "name": s.name, "user": userNames[s.userID] ?? s.userID, "node": s.nodeID.flatMap { nodeNames[$0] } ?? "—",
                 "protocol": s.protocol.rawValue, "device": s.deviceID.flatMap { deviceNames[$0] } ?? "all devices", "csrf": csrf]
            },
            "userOptions": users.map { ["id": $0.id, "label": $0.email ?? $0.name] },
            "nodeOptions": nodes.filter(\.isPlaceable).map { ["id": $0.id, "label": "\($0.name) (\($0.region.isEmpty ? $0.host : $0.region))"] },
        ])
    }

    func pathsPage(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let (paths, links, nodes, devices, users, bindings, specs) = try await store.read { tx in
            (try tx.paths(), try tx.nodeLinks(), try tx.nodes(), try tx.devices(), try tx.users(), try tx.exitBindings(), try tx.profileSpecs())
        }
        let nodeNames = Dictionary(uniqueKeysWithValues: nodes.map { ($0.id, $0.name) })
        let userNames = Dictionary(uniqueKeysWithValues: users.map { ($0.id, $0.email ?? $0.name) })
        let deviceByID = Dictionary(uniqueKeysWithValues: devices.map { ($0.id, $0) })
        let pathNames = Dictionary(uniqueKeysWithValues: paths.map { ($0.id, $0.name) })
        let csrf = context.principal?.csrfToken ?? ""
        return pages.render("paths", title: "Paths", path: "/ui/paths", principal: context.principal, request: request, values: [
            "paths": paths.map { path -> [String: Any] in
                let hopLinks = path.links(in: links).map { "\(nodeNames[$0.entryNodeID] ?? $0.entryNodeID): \($0.innerInterface)" }
                return ["id": path.id, "name": path.name, "color": path.color, "hops": path.hops.map { nodeNames[$0] ?? $0 }.joined(separator: " → "),
                        "links": hopLinks.joined(separator: ", "), "profiles": specs.filter { $0.pathID == path.id }.count,
                        "bound": bindings.filter { $0.pathID == path.id }.compactMap { deviceByID[$0.deviceID]?.name }.joined(separator: ", "),
                        "csrf": csrf]
            },
            "bindings": bindings.map { binding -> [String: Any] in
                let device = deviceByID[binding.deviceID]
                return ["deviceID": binding.deviceID, "device": device?.name ?? binding.deviceID,
                        "user": device.flatMap { userNames[$0.userID] } ?? "—", "path": pathNames[binding.pathID] ?? binding.pathID,
                        "since": AdminPages.time(binding.createdAt), "csrf": csrf]
            },
            "nodeOptions": nodes.filter(\.isPlaceable).map { ["id": $0.id, "label": "\($0.name) (\($0.region.isEmpty ? $0.host : $0.region))"] },
            "deviceOptions": devices.map { ["id": $0.id, "label": "\($0.name) (\(userNames[$0.userID] ?? $0.userID))"] },
            "pathOptions": paths.map { ["id": $0.id, "label": $0.name] },
        ])
    }

    func serversPage(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let (pins, installed) = try await store.read { tx in
            var installed: [(AgentKind, String, String, AgentSSHRecord)] = []
            for node in try tx.nodes() { if let ssh = try tx.agentSSH(.node, id: node.id) { installed.append((.node, node.id, node.name, ssh)) } }
            for relay in try tx.relays() { if let ssh = try tx.agentSSH(.relay, id: relay.id) { installed.append((.relay, relay.id, relay.name, ssh)) } }
            return (try tx.pinnedHostKeys(), installed)
        }
        let identity = try await controller.ssh.existingIdentity()
        let packages = ((try? FileManager.default.contentsOfDirectory(atPath: packageDirectory)) ?? []).filter { $0.hasSuffix(".deb") }.sorted()
        let csrf = context.principal?.csrfToken ?? ""
        var values: [String: Any] = [
            "agents": installed.map { kind, id, name, ssh -> [String: Any] in
                ["id": id, "name": name, "kind": kind.rawValue, "target": ssh.target.description, "version": ssh.packageVersion, "csrf": csrf,
                 "packages": packages.filter { $0.hasPrefix(kind.package + "_") }]
            },
            "pins": pins.map { ["host": $0.host, "type": $0.keyType, "fingerprint": $0.fingerprint, "pinned": AdminPages.time($0.pinnedAt), "csrf": csrf] },
            "packageDirectory": packageDirectory,
            "nodePackages": packages.filter { $0.hasPrefix(AgentKind.node.package + "_") },
            "relayPackages": packages.filter { $0.hasPrefix(AgentKind.relay.package + "_") },
        ]
        if let identity { values["key"] = ["publicKey": identity.publicKey, "fingerprint": identity.fingerprint] }
        return pages.render("servers", title: "Servers", path: "/ui/servers", principal: context.principal, request: request, values: values)
    }

    func sessionsPage(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let (open, recent, nodes, devices, users) = try await store.read { tx in
            (try tx.sessions(SessionQuery(openOnly: true, limit: 200)).items, try tx.sessions(SessionQuery(limit: 100)).items,
             try tx.nodes(), try tx.devices(), try tx.users())
        }
        let nodeNames = Dictionary(uniqueKeysWithValues: nodes.map { ($0.id, $0.name) })
        let deviceNames = Dictionary(uniqueKeysWithValues: devices.map { ($0.id, $0.name) })
        let userNames = Dictionary(uniqueKeysWithValues: users.map { ($0.id, $0.email ?? $0.name) })
        func row(_ e: ConnectionEventRecord) -> [String: Any] {
            ["at": AdminPages.time(e.at), "type": e.eventType, "node": nodeNames[e.nodeID] ?? e.nodeID,
             "device": e.deviceID.flatMap { deviceNames[$0] } ?? "unknown peer \(e.peerID)",
             "user": e.userID.flatMap { userNames[$0] } ?? "—", "source": e.sourceEndpoint, "protocol": e.protocol,
             "rx": e.rxBytes, "tx": e.txBytes, "reason": e.reason]
        }
        return pages.render("sessions", title: "Sessions", path: "/ui/sessions", principal: context.principal, request: request,
                            live: true, values: ["open": open.map(row), "events": recent.map(row)])
    }

    func alertsPage(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let (alerts, nodes) = try await store.read { tx in (try tx.alerts(AlertQuery(limit: 200)).items, try tx.nodes()) }
        let nodeNames = Dictionary(uniqueKeysWithValues: nodes.map { ($0.id, $0.name) })
        let csrf = context.principal?.csrfToken ?? ""
        return pages.render("alerts", title: "Alerts", path: "/ui/alerts", principal: context.principal, request: request, values: [
            "alerts": alerts.map { a -> [String: Any] in
                ["id": a.id, "at": AdminPages.time(a.at), "kind": a.kind, "severity": a.severity.rawValue, "status": a.status.rawValue,
                 "subject": a.nodeID.map { "node \(nodeNames[$0] ?? $0)" } ?? a.deviceID.map { "device \($0)" } ?? "—",
                 "detail": a.detail, "actionable": a.status != .resolved, "version": a.version, "csrf": csrf]
            },
        ])
    }

    func auditPage(_ request: Request, _ context: AdminRequestContext, verdict: String?) async throws -> Response {
        let query = request.uri.queryParameters
        var filter = AuditQuery(action: query.get("action").flatMap { $0.isEmpty ? nil : $0 },
                                actor: query.get("actor").flatMap { $0.isEmpty ? nil : $0 }, limit: 100)
        if let before = query.get("before"), let parts = Optional(before.split(separator: "~", maxSplits: 1)), parts.count == 2,
           let at = Int64(parts[0]) {
            filter.before = (at, String(parts[1]))
        }
        let auditQuery = filter
        let rows = try await store.read { tx in try tx.auditRows(auditQuery) }
        var older: String?
        if rows.count == filter.limit, let last = rows.last {
            older = "/ui/audit?before=\(last.at)~\(last.id)&action=\(AdminPages.escape(filter.action ?? ""))&actor=\(AdminPages.escape(filter.actor ?? ""))"
        }
        var values: [String: Any] = [
            "rows": rows.map { r -> [String: Any] in
                ["at": AdminPages.time(r.at), "actor": r.actor, "actorKind": r.actorKind, "action": r.action,
                 "target": r.targetID.isEmpty ? r.targetType : r.targetID, "sourceIP": r.sourceIP,
                 "result": r.result + (r.error.isEmpty ? "" : ": \(r.error)"), "detail": r.detail]
            },
            "filterAction": filter.action ?? "", "filterActor": filter.actor ?? "",
        ]
        if let verdict { values["verdict"] = verdict }
        if let older { values["older"] = older }
        return pages.render("audit", title: "Audit log", path: "/ui/audit", principal: context.principal, request: request, values: values)
    }

    func tokensPage(_ request: Request, _ context: AdminRequestContext, created: AdminService.CreatedToken?) async throws -> Response {
        let tokens = try await admin.tokens()
        let csrf = context.principal?.csrfToken ?? ""
        var values: [String: Any] = [
            "tokens": tokens.map { t -> [String: Any] in
                let dto = TokenDTO(t)
                return ["id": t.id, "name": t.name, "scope": t.scope.rawValue, "prefix": t.prefix, "state": dto.state,
                        "createdBy": t.createdBy, "expires": t.expiresAt.map { AdminPages.time($0) } ?? "never",
                        "lastUsed": AdminPages.time(t.lastUsedAt), "active": dto.state == "active", "csrf": csrf]
            },
        ]
        if let created {
            values["created"] = ["name": created.token.name, "scope": created.token.scope.rawValue, "secret": created.secret]
        }
        return pages.render("tokens", title: "API tokens", path: "/ui/tokens", principal: context.principal, request: request, values: values)
    }
}
