import Foundation
import Hummingbird
import PharosSpec

/// Nodes, relays, users and their devices and invites, profile specs.
extension AdminAPI {
    func addFleetRoutes(readonly: RouterGroup<AdminRequestContext>, admin group: RouterGroup<AdminRequestContext>) {
        // MARK: nodes
        readonly.get("nodes") { request, _ -> Page<NodeDTO> in
            let query = request.uri.queryParameters
            let (limit, offset) = try Self.paging(request)
            var filter = NodeQuery(region: query.get("region"), search: query.get("q"), limit: limit, offset: offset)
            if let status = query.get("status") {
                guard let parsed = NodeStatus(rawValue: status) else {
                    throw Problem(.badRequest, "status must be one of \(NodeStatus.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                filter.status = parsed
            }
            let nodeQuery = filter
            let page = try await store.read { tx in try tx.nodeOverviews(nodeQuery) }
            return Page(items: page.items.map(NodeDTO.init), total: page.total, limit: limit, offset: offset)
        }
        readonly.get("nodes/:id") { _, context -> NodeDTO in
            try await node(try context.parameters.require("id"))
        }
        group.patch("nodes/:id") { request, context -> MutationDTO<NodeDTO> in
            let form = try await Self.body(NodePatchRequest.self, request, context)
            let patch = FleetService.NodePatch(name: form.name, region: form.region, forwarding: form.forwarding,
                                               masquerade: form.masquerade, isolation: form.isolation,
                                               endpointIPs: form.endpointIPs?.joined(separator: ","))
            let edit = try await service.updateNode(try context.parameters.require("id"), patch, expectedVersion: form.version,
                                                    by: context.actor)
            return MutationDTO(value: try await node(edit.node.id), pushes: edit.pushes.mapValues(\.summary))
        }
        group.delete("nodes/:id") { request, context -> MutationDTO<String> in
            // Installed over SSH: stopped and disabled there first (`?keep_agent=true`: a dead host).
            if request.uri.queryParameters.get("keep_agent") != "true" {
                _ = try await onboarding.uninstall(.node, try context.parameters.require("id"), by: context.actor)
            }
            let result = try await service.removeNode(try context.parameters.require("id"), by: context.actor)
            return MutationDTO(value: result.value.id, pushes: result.pushes.mapValues(\.summary))
        }
        group.post("nodes/:id/push") { _, context -> MutationDTO<String> in
            let result = try await service.pushNow(try context.parameters.require("id"), by: context.actor)
            return MutationDTO(value: result.value.id, pushes: result.pushes.mapValues(\.summary))
        }

        // MARK: relays
        readonly.get("relays") { _, _ -> [RelayDTO] in
            let states = relayTier?.tunnelStates ?? [:]
            return try await store.read { tx in try tx.relays() }.map { RelayDTO($0, tunnelUp: states[$0.id]) }
        }
        group.delete("relays/:id") { request, context -> RelayDTO in
            if request.uri.queryParameters.get("keep_agent") != "true" {
                _ = try await onboarding.uninstall(.relay, try context.parameters.require("id"), by: context.actor)
            }
            return RelayDTO(try await service.removeRelay(try context.parameters.require("id"), by: context.actor).relay, tunnelUp: nil)
        }

        // MARK: users and devices
        readonly.get("users") { request, _ -> Page<UserDTO> in
            let (limit, offset) = try Self.paging(request)
            let search = request.uri.queryParameters.get("q")?.lowercased()
            let (users, counts) = try await store.read { tx in (try tx.users(), try tx.deviceCounts()) }
            let matching = users.filter { user in
                guard let search, !search.isEmpty else { return true }
                return user.name.lowercased().contains(search) || (user.email ?? "").contains(search)
            }
            return Page(items: matching.dropFirst(offset).prefix(limit).map { UserDTO($0, devices: counts[$0.id] ?? 0) },
                        total: matching.count, limit: limit, offset: offset)
        }
        readonly.get("users/:id") { _, context -> UserDTO in
            let id = try context.parameters.require("id")
            let (user, count) = try await store.read { tx in
                let user = try tx.user(id)
                return (user, try tx.devices(user: user.id).count)
            }
            return UserDTO(user, devices: count)
        }
        group.post("users") { request, context -> Response in
            let form = try await Self.body(UserCreateRequest.self, request, context)
            let user = try await service.addUser(name: form.name, email: form.email, role: try form.role.map { try UserRole(input: $0) } ?? .user,
                                                by: context.actor)
            return try Self.json(UserDTO(user, devices: 0), status: .created)
        }
        group.patch("users/:id") { request, context -> UserDTO in
            let form = try await Self.body(UserPatchRequest.self, request, context)
            return UserDTO(try await service.updateUser(try context.parameters.require("id"), .init(name: form.name, status: try form.status.map { try AccessStatus(input: $0) }),
                                                        expectedVersion: form.version, by: context.actor))
        }
        group.delete("users/:id") { _, context -> MutationDTO<String> in
            let result = try await service.removeUser(try context.parameters.require("id"), by: context.actor)
            return MutationDTO(value: result.value.id, pushes: result.pushes.mapValues(\.summary))
        }
        group.post("users/:id/invite") { request, context -> Response in
            let form = try await Self.body(InviteRequest.self, request, context, orElse: InviteRequest(relay: nil))
            let invite = try await accounts.invite(user: try context.parameters.require("id"), relay: form.relay, by: context.actor)
            return try Self.json(InviteDTO(invite), status: .created)
        }
        readonly.get("users/:id/devices") { _, context -> [DeviceDTO] in
            let id = try context.parameters.require("id")
            return try await store.read { tx in try tx.devices(user: try tx.user(id).id) }.map(DeviceDTO.init)
        }
        group.post("users/:id/devices") { request, context -> Response in
            let form = try await Self.body(DeviceCreateRequest.self, request, context)
            var key: [UInt8]?
            if let text = form.encryptionKey {
                guard let decoded = Base64.decodeStandard(text) else {
                    throw Problem(.badRequest, "encryption_key must be standard base64 of a 32-byte X25519 public key")
                }
                key = decoded
            }
            let result = try await service.addDevice(user: try context.parameters.require("id"), name: form.name,
                                                     platform: form.platform ?? "", encryptionKey: key, by: context.actor)
            return try Self.json(MutationDTO(value: DeviceDTO(result.value), pushes: result.pushes.mapValues(\.summary)), status: .created)
        }
        group.delete("devices/:id") { _, context -> MutationDTO<String> in
            let result = try await service.removeDevice(try context.parameters.require("id"), by: context.actor)
            return MutationDTO(value: result.value.id, pushes: result.pushes.mapValues(\.summary))
        }

        // MARK: profile specs
        readonly.get("profiles") { request, _ -> [ProfileSpecDTO] in
            let user = request.uri.queryParameters.get("user")
            return try await store.read { tx in try tx.profileSpecs(user: try user.map { try tx.user($0).id }) }.map(ProfileSpecDTO.init)
        }
        group.post("profiles") { request, context -> Response in
            let form = try await Self.body(ProfileCreateRequest.self, request, context)
            guard let proto = ProfileProtocol(rawValue: form.protocol ?? "amneziawg") else {
                throw Problem(.badRequest, "protocol must be amneziawg, xray-reality or both")
            }
            let result = try await service.createProfileSpec(user: form.user, name: form.name, node: form.node, path: form.path,
                                                             device: form.device, entryIPs: form.entryIPs ?? [], protocol: proto,
                                                             by: context.actor)
            return try Self.json(MutationDTO(value: ProfileSpecDTO(result.value), pushes: result.pushes.mapValues(\.summary)),
                                 status: .created)
        }
        group.delete("profiles/:id") { _, context -> MutationDTO<String> in
            let result = try await service.removeProfileSpec(try context.parameters.require("id"), by: context.actor)
            return MutationDTO(value: result.value.id, pushes: result.pushes.mapValues(\.summary))
        }

        // MARK: paths (cascades) and the inner links they use
        readonly.get("paths") { _, _ -> [PathDTO] in
            try await store.read { tx in try tx.paths() }.map(PathDTO.init)
        }
        readonly.get("node-links") { _, _ -> [NodeLinkDTO] in
            try await store.read { tx in try tx.nodeLinks() }.map(NodeLinkDTO.init)
        }
        group.post("paths") { request, context -> Response in
            let form = try await Self.body(PathCreateRequest.self, request, context)
            let result = try await service.addPath(name: form.name, hops: form.hops, color: form.color ?? "", by: context.actor)
            return try Self.json(MutationDTO(value: PathDTO(result.value), pushes: result.pushes.mapValues(\.summary)), status: .created)
        }
        group.delete("paths/:id") { _, context -> MutationDTO<String> in
            let result = try await service.removePath(try context.parameters.require("id"), by: context.actor)
            return MutationDTO(value: result.value.id, pushes: result.pushes.mapValues(\.summary))
        }
        group.post("paths/:id/provision") { _, context -> MutationDTO<PathDTO> in
            let result = try await service.provisionPath(try context.parameters.require("id"), by: context.actor)
            return MutationDTO(value: PathDTO(result.value), pushes: result.pushes.mapValues(\.summary))
        }
        // The live exit switch (upstream's device_exits): POST {"path": ID or name}, DELETE unbinds.
        readonly.get("device-exits") { _, _ -> [ExitBindingDTO] in
            try await store.read { tx in try tx.exitBindings() }.map(ExitBindingDTO.init)
        }
        group.post("devices/:id/bind") { request, context -> MutationDTO<ExitBindingDTO> in
            let form = try await Self.body(ExitBindRequest.self, request, context)
            let result = try await service.bindExit(device: try context.parameters.require("id"), path: form.path, by: context.actor)
            return MutationDTO(value: ExitBindingDTO(result.value), pushes: result.pushes.mapValues(\.summary))
        }
        group.delete("devices/:id/bind") { _, context -> MutationDTO<ExitBindingDTO> in
            let result = try await service.unbindExit(device: try context.parameters.require("id"), by: context.actor)
            return MutationDTO(value: ExitBindingDTO(result.value), pushes: result.pushes.mapValues(\.summary))
        }
    }

    func node(_ reference: String) async throws -> NodeDTO {
        let overview = try await store.read { tx -> NodeOverview? in
            let node = try tx.node(reference)
            return try tx.nodeOverviews(NodeQuery(ids: [node.id])).items.first
        }
        guard let overview else { throw StoreError.notFound(kind: "node", id: reference) }
        return NodeDTO(overview)
    }

    struct InviteDTO: Encodable, Sendable {
        var link: String
        var ticketID: String
        var userID: String
        var expiresAt: String
        /// The link as a 512 px PNG, standard base64.
        var qrPNG: String

        init(_ invite: AccountService.Invite) throws {
            link = invite.link.url
            (ticketID, userID) = (invite.ticketID, invite.userID)
            expiresAt = LiveEvent.timestamp(Int64(invite.expiresAt.timeIntervalSince1970 * 1_000_000))
            qrPNG = Base64.standard(try JoinQR.png(for: invite.link.url))
        }

        enum CodingKeys: String, CodingKey {
            case link
            case ticketID = "ticket_id", userID = "user_id", expiresAt = "expires_at", qrPNG = "qr_png"
        }
    }
}
