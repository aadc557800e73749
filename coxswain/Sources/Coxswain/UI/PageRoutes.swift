import Foundation
import Hummingbird
import PharosSpec

/// The server-rendered admin UI under /ui: every page is a GET that reads through the store,
/// every form a POST that goes through the same service calls as the API (audited with the
/// admin as actor) and answers with a redirect (post/redirect/get).
extension AdminAPI {
    struct CSRFForm: Decodable { var csrf: String; enum CodingKeys: String, CodingKey { case csrf = "_csrf" } }
    struct LoginForm: Decodable { var email: String; var password: String }
    struct UserForm: Decodable {
        var csrf, name: String
        var email: String?
        enum CodingKeys: String, CodingKey { case csrf = "_csrf", name, email }
    }
    struct ProfileForm: Decodable {
        var csrf, name, user, node: String
        var `protocol`: String?
        enum CodingKeys: String, CodingKey { case csrf = "_csrf", name, user, node, `protocol` }
    }
    struct PathForm: Decodable {
        var csrf, name, entry, exit: String
        var mid, color: String?
        enum CodingKeys: String, CodingKey { case csrf = "_csrf", name, entry, mid, exit, color }
    }
    struct BindForm: Decodable {
        var csrf, device, path: String
        enum CodingKeys: String, CodingKey { case csrf = "_csrf", device, path }
    }
    struct TokenForm: Decodable {
        var csrf, name, scope: String
        var expiresIn: String?
        enum CodingKeys: String, CodingKey { case csrf = "_csrf", name, scope, expiresIn = "expires_in" }
    }
    struct AlertForm: Decodable {
        var csrf: String
        var version: Int64?
        enum CodingKeys: String, CodingKey { case csrf = "_csrf", version }
    }

    struct KeyInstallForm: Decodable {
        var csrf, target, password: String
        var hostKey, trustFirstUse: String?
        enum CodingKeys: String, CodingKey { case csrf = "_csrf", target, password, hostKey = "host_key", trustFirstUse = "trust_first_use" }
    }
    struct NodeSSHForm: Decodable {
        var csrf, target, package: String
        var name, region, addr, wgPort, listenPort: String?
        enum CodingKeys: String, CodingKey {
            case csrf = "_csrf", target, package, name, region, addr, wgPort = "wg_port", listenPort = "listen_port"
        }
    }
    struct RelaySSHForm: Decodable {
        var csrf, target, package, hostname: String
        var endpoint, publicAddr, clientListenPort, tunnelListenPort: String?
        enum CodingKeys: String, CodingKey {
            case csrf = "_csrf", target, package, hostname, endpoint, publicAddr = "public_addr"
            case clientListenPort = "client_listen_port", tunnelListenPort = "tunnel_listen_port"
        }
    }
    struct PackageForm: Decodable {
        var csrf, package: String
        enum CodingKeys: String, CodingKey { case csrf = "_csrf", package }
    }
    struct HostForm: Decodable {
        var csrf, host: String
        enum CodingKeys: String, CodingKey { case csrf = "_csrf", host }
    }

    func addPages(to router: Router<AdminRequestContext>) {
        router.get("/") { _, _ in Response.redirect(to: "/ui/", type: .normal) }
        router.get("ui/app.css") { _, _ in Self.asset(PageAssets.css, type: "text/css; charset=utf-8") }
        router.get("ui/live.js") { _, _ in Self.asset(PageAssets.liveJS, type: "text/javascript; charset=utf-8") }
        router.get("ui/login") { request, context in
            pages.render("login", title: "Log in", path: "/ui/login", principal: nil, request: request)
        }
        router.post("ui/login") { request, context in
            try AdminAPI.refuseCrossSite(request)
            let form = try await Self.form(LoginForm.self, request, context)
            do {
                let login = try await admin.login(email: form.email, password: form.password, sourceIP: context.sourceIP)
                var response = Response.redirect(to: "/ui/", type: .normal)
                response.setCookie(sessionCookie(value: login.sessionToken, maxAge: Int(AdminService.sessionLifetime / 1_000_000)))
                return response
            } catch {
                let problem = Problem.from(error) ?? Problem(.internalServerError, "\(error)")
                return pages.render("login", title: "Log in", path: "/ui/login", principal: nil, request: request,
                                    status: problem.status, values: ["error": problem.detail, "email": form.email])
            }
        }

        let ui = router.group("ui").add(middleware: RequirePageSession())
        ui.post("logout") { request, context in
            _ = try await checked(CSRFForm.self, request, context)
            if let token = context.sessionToken, let principal = context.principal {
                try await admin.logout(sessionToken: token, principal: principal, sourceIP: context.sourceIP)
            }
            var response = Response.redirect(to: "/ui/login", type: .normal)
            response.setCookie(sessionCookie(value: "", maxAge: 0))
            return response
        }
        ui.get("") { request, context in try await overviewPage(request, context) }
        ui.get("users") { request, context in try await usersPage(request, context) }
        ui.post("users") { request, context in
            let form = try await checked(UserForm.self, request, context)
            return await outcome("/ui/users") {
                let user = try await service.addUser(name: form.name, email: form.email?.isEmpty == false ? form.email : nil,
                                                     by: context.actor)
                return "added \(user.email ?? user.name)"
            }
        }
        ui.post("users/:id/invite") { request, context in
            _ = try await checked(CSRFForm.self, request, context)
            do {
                let invite = try await accounts.invite(user: try context.parameters.require("id"), by: context.actor)
                let user = try await store.read { tx in try tx.user(invite.userID) }
                return pages.render("invite", title: "Join link", path: "/ui/users", principal: context.principal, request: request,
                                    values: ["invitee": user.email ?? user.name, "link": invite.link.url,
                                             "qr": Base64.standard(try JoinQR.png(for: invite.link.url)),
                                             "expires": AdminPages.time(Int64(invite.expiresAt.timeIntervalSince1970 * 1_000_000))])
            } catch {
                return AdminPages.redirect("/ui/users", error: Problem.from(error)?.detail ?? "\(error)")
            }
        }
        ui.get("profiles") { request, context in try await profilesPage(request, context) }
        ui.post("profiles") { request, context in
            let form = try await checked(ProfileForm.self, request, context)
            return await outcome("/ui/profiles") {
                guard let proto = ProfileProtocol(rawValue: form.protocol ?? "amneziawg") else {
                    throw Problem(.badRequest, "protocol must be amneziawg, xray-reality or both")
                }
                let result = try await service.createProfileSpec(user: form.user, name: form.name, node: form.node,
                                                                 protocol: proto, by: context.actor)
                return "created \(result.value.name)" + Self.pushSummary(result.pushes.mapValues(\.summary))
            }
        }
        ui.post("profiles/:id/delete") { request, context in
            _ = try await checked(CSRFForm.self, request, context)
            return await outcome("/ui/profiles") {
                let result = try await service.removeProfileSpec(try context.parameters.require("id"), by: context.actor)
                return "removed \(result.value.name)" + Self.pushSummary(result.pushes.mapValues(\.summary))
            }
        }
        ui.get("paths") { request, context in try await pathsPage(request, context) }
        ui.post("paths") { request, context in
            let form = try await checked(PathForm.self, request, context)
            return await outcome("/ui/paths") {
                let hops = [form.entry, form.mid ?? "", form.exit].filter { !$0.isEmpty }
                let result = try await service.addPath(name: form.name, hops: hops, color: form.color ?? "", by: context.actor)
                return "added path \(result.value.name)" + Self.pushSummary(result.pushes.mapValues(\.summary))
            }
        }
        ui.post("paths/:id/delete") { request, context in
            _ = try await checked(CSRFForm.self, request, context)
            return await outcome("/ui/paths") {
                let result = try await service.removePath(try context.parameters.require("id"), by: context.actor)
                return "removed path \(result.value.name)" + Self.pushSummary(result.pushes.mapValues(\.summary))
            }
        }
        ui.post("paths/bind") { request, context in
            let form = try await checked(BindForm.self, request, context)
            return await outcome("/ui/paths") {
                let result = try await service.bindExit(device: form.device, path: form.path, by: context.actor)
                return "\(result.value.device.name) now leaves by \(result.value.path?.name ?? "-")"
                    + Self.pushSummary(result.pushes.mapValues(\.summary))
            }
        }
        ui.post("devices/:id/unbind") { request, context in
            _ = try await checked(CSRFForm.self, request, context)
            return await outcome("/ui/paths") {
                let result = try await service.unbindExit(device: try context.parameters.require("id"), by: context.actor)
                return "\(result.value.device.name) no longer leaves by \(result.value.previous?.name ?? "-")"
                    + Self.pushSummary(result.pushes.mapValues(\.summary))
            }
        }
        addServerPages(ui)
        ui.get("sessions") { request, context in try await sessionsPage(request, context) }
        ui.get("alerts") { request, context in try await alertsPage(request, context) }
        for (action, status) in [("ack", AlertStatus.acknowledged), ("resolve", .resolved)] {
            ui.post(RouterPath("alerts/:id/\(action)")) { request, context in
                let form = try await checked(AlertForm.self, request, context)
                return await outcome("/ui/alerts") {
                    let alert = try await service.setAlertStatus(try context.parameters.require("id"), to: status,
                                                                 expectedVersion: form.version, by: context.actor)
                    return "\(alert.kind) \(status.rawValue)"
                }
            }
        }
        ui.get("audit") { request, context in try await auditPage(request, context, verdict: nil) }
        ui.post("audit/verify") { request, context in
            _ = try await checked(CSRFForm.self, request, context)
            let check = try await service.verifyAudit()
            let verdict = check.broken.map { "BROKEN: \($0)" } ?? "intact: \(check.rows) rows verified"
            return try await auditPage(request, context, verdict: verdict)
        }
        ui.get("tokens") { request, context in try await tokensPage(request, context, created: nil) }
        ui.post("tokens") { request, context in
            let form = try await checked(TokenForm.self, request, context)
            do {
                guard let scope = TokenScope(rawValue: form.scope) else { throw Problem(.badRequest, "unknown scope \(form.scope)") }
                let created = try await admin.createToken(name: form.name, scope: scope,
                                                          lifetime: try AdminService.parseLifetime(form.expiresIn ?? "never"),
                                                          by: context.actor)
                return try await tokensPage(request, context, created: created)
            } catch {
                return AdminPages.redirect("/ui/tokens", error: Problem.from(error)?.detail ?? "\(error)")
            }
        }
        ui.post("tokens/:id/revoke") { request, context in
            _ = try await checked(CSRFForm.self, request, context)
            return await outcome("/ui/tokens") {
                "revoked \(try await admin.revokeToken(try context.parameters.require("id"), by: context.actor).name)"
            }
        }
    }

    /// The Servers page's forms: the same onboarding calls as `POST /api/nodes/ssh` and the
    /// rest, each answered when its SSH work is done (an install: tens of seconds).
    func addServerPages(_ ui: RouterGroup<AdminRequestContext>) {
        ui.get("servers") { request, context in try await serversPage(request, context) }
        ui.post("servers/key") { request, context in
            _ = try await checked(CSRFForm.self, request, context)
            return await outcome("/ui/servers") {
                "the controller's SSH key is \(try await controller.ssh.identity(by: context.actor).fingerprint)"
            }
        }
        ui.post("servers/install-key") { request, context in
            let form = try await checked(KeyInstallForm.self, request, context)
            return await outcome("/ui/servers") {
                let target = try SSHTarget.parse(form.target)
                let first = try SSHClient.FirstHostKey.from(hostKey: form.hostKey, trustFirstUse: form.trustFirstUse == "true")
                let installed = try await controller.ssh.installKey(target, password: Array(form.password.utf8), firstHostKey: first,
                                                                    by: context.actor)
                return (installed.wasThere ? "the key was already installed for \(target)" : "installed the key for \(target)")
                    + (installed.canBecomeRoot ? "" : "; \(target.user) cannot become root there (sudo -n), which adding an agent needs")
            }
        }
        ui.post("servers/nodes") { request, context in
            let form = try await checked(NodeSSHForm.self, request, context)
            return await outcome("/ui/servers") {
                let added = try await onboarding.addNode(
                    AgentOnboarding.NodeRequest(target: try SSHTarget.parse(form.target), packagePath: try packagePath(form.package),
                                                name: Self.text(form.name), region: form.region ?? "", controlAddress: Self.text(form.addr),
                                                wgPort: try Self.port(form.wgPort, "AmneziaWG port") ?? PharosPorts.amneziaWG,
                                                listenPort: try Self.port(form.listenPort, "listen port")), by: context.actor)
                return "added node \(added.node.name): pharos-node \(added.packageVersion)"
                    + (added.agentVersion.map { ", answered GetStatus (\($0))" } ?? ", not answering yet: \(added.answerError ?? "no answer")")
            }
        }
        ui.post("servers/relays") { request, context in
            let form = try await checked(RelaySSHForm.self, request, context)
            return await outcome("/ui/servers") {
                let added = try await onboarding.addRelay(
                    AgentOnboarding.RelayRequest(target: try SSHTarget.parse(form.target), packagePath: try packagePath(form.package),
                                                 hostname: form.hostname, endpoint: Self.text(form.endpoint), publicAddress: Self.text(form.publicAddr),
                                                 clientListenPort: try Self.port(form.clientListenPort, "client listen port"),
                                                 tunnelListenPort: try Self.port(form.tunnelListenPort, "tunnel listen port")), by: context.actor)
                return "added relay \(added.relay.name): pharos-relay \(added.packageVersion), tunnel \(added.relay.endpoint)"
            }
        }
        for kind in [AgentKind.node, .relay] {
            for (verb, running) in [("start", true), ("stop", false)] {
                ui.post(RouterPath("servers/\(kind.rawValue)s/:id/\(verb)")) { request, context in
                    _ = try await checked(CSRFForm.self, request, context)
                    return await outcome("/ui/servers") {
                        let switched = try await onboarding.setRunning(kind, try context.parameters.require("id"), running, by: context.actor)
                        return "\(verb == "start" ? "started" : "stopped") \(switched.name)"
                            + (running ? (switched.agentVersion.map { " (\($0))" } ?? "; not answering yet: \(switched.answerError ?? "no answer")") : "")
                    }
                }
            }
            ui.post(RouterPath("servers/\(kind.rawValue)s/:id/update")) { request, context in
                let form = try await checked(PackageForm.self, request, context)
                return await outcome("/ui/servers") {
                    let updated = try await onboarding.update(kind, try context.parameters.require("id"),
                                                              packagePath: try packagePath(form.package), by: context.actor)
                    return "updated \(updated.name): \(updated.from) -> \(updated.to)"
                }
            }
        }
        ui.post("servers/pins/forget") { request, context in
            let form = try await checked(HostForm.self, request, context)
            return await outcome("/ui/servers") {
                guard try await controller.ssh.forgetPins(of: form.host, by: context.actor) else { throw Problem(.notFound, "no host key is pinned for \(form.host)") }
                return "forgot the pinned key of \(form.host); the next login pins the key it presents"
            }
        }
    }

    /// An optional form field: nil when left empty.
    static func text(_ value: String?) -> String? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        return value
    }

    /// An optional port field: nil when left empty, else a number.
    static func port(_ value: String?, _ field: String) throws -> Int? {
        guard let value = text(value) else { return nil }
        guard let port = Int(value) else { throw Problem(.badRequest, "the \(field) must be a number, not \"\(value)\"") }
        return port
    }

    static func asset(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type, .cacheControl: "max-age=300"], body: .init(byteBuffer: .init(string: text)))
    }

    static func form<T: Decodable>(_ type: T.Type, _ request: Request, _ context: AdminRequestContext) async throws -> T {
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        do { return try URLEncodedFormDecoder().decode(type, from: String(buffer: body)) } catch {
            throw Problem(.badRequest, "the form is incomplete or malformed")
        }
    }

    /// A form of a logged-in page: decoded, and its `_csrf` must be the session's.
    func checked<T: Decodable>(_ type: T.Type, _ request: Request, _ context: AdminRequestContext) async throws -> T {
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        let text = String(buffer: body)
        guard let token = try? URLEncodedFormDecoder().decode(CSRFForm.self, from: text).csrf,
              let expected = context.principal?.csrfToken, constantTimeEqual(token, expected) else {
            throw Problem(.forbidden, "the form's CSRF token does not match your session; reload the page and retry")
        }
        do { return try URLEncodedFormDecoder().decode(type, from: text) } catch {
            throw Problem(.badRequest, "the form is incomplete or malformed")
        }
    }

    /// Runs a form's action and redirects back with its outcome in one line.
    func outcome(_ path: String, _ body: () async throws -> String) async -> Response {
        do { return AdminPages.redirect(path, ok: try await body()) } catch {
            return AdminPages.redirect(path, error: Problem.from(error)?.detail ?? "\(error)")
        }
    }

    static func pushSummary(_ pushes: [String: String]) -> String {
        pushes.isEmpty ? "" : "; " + pushes.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
    }
}

/// Pages need an admin login (the cookie); anyone else is sent to the login page.
struct RequirePageSession: RouterMiddleware {
    typealias Context = AdminRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard context.principal?.csrfToken != nil else { return Response.redirect(to: "/ui/login", type: .normal) }
        return try await next(request, context)
    }
}
