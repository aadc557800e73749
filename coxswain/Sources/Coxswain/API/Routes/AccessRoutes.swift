import Foundation
import Hummingbird

/// Login and logout, who am I, API tokens, the audit log.
extension AdminAPI {
    struct MeDTO: ResponseEncodable, Sendable {
        var name: String
        var kind: String
        var scope: String
        var csrfToken: String?
        var expiresAt: String?

        enum CodingKeys: String, CodingKey {
            case name, kind, scope
            case csrfToken = "csrf_token", expiresAt = "expires_at"
        }
    }

    /// `POST /api/auth/login` (the only route without authentication): sets `cox_session`,
    /// HttpOnly, SameSite=Strict, Secure when `ui.secure_cookies` says the UI is reached over TLS.
    func login(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        try Self.refuseCrossSite(request)
        let form = try await Self.body(LoginRequest.self, request, context)
        let login = try await admin.login(email: form.email, password: form.password, sourceIP: context.sourceIP)
        var response = try Self.json(MeDTO(name: login.user.email ?? login.user.id, kind: "session", scope: TokenScope.admin.rawValue,
                                           csrfToken: login.csrfToken, expiresAt: APITime.format(login.expiresAt)))
        response.setCookie(sessionCookie(value: login.sessionToken, maxAge: Int(AdminService.sessionLifetime / 1_000_000)))
        return response
    }

    /// A login POSTed by another site's page (a browser on the admin's machine, where the UI
    /// is reached) is refused before it counts: otherwise any page an admin visits could spend
    /// the login budget of 127.0.0.1 and lock every admin out. Browsers send `Origin` on every
    /// cross-origin POST; clients without it (curl, scripts) are not browsers.
    static func refuseCrossSite(_ request: Request) throws {
        guard let origin = request.headers[.origin] else { return }
        // Origin is scheme://authority; compare its authority with the Host the browser sent
        // (both omit a default port; IPv6 literals keep their brackets in both).
        let authority = request.head.authority ?? ""
        guard let range = origin.range(of: "://"), !authority.isEmpty,
              origin[range.upperBound...].lowercased() == authority.lowercased() else {
            throw Problem(.forbidden, "cross-site login refused: this page was not served by this controller (Origin \(origin))")
        }
    }

    func sessionCookie(value: String, maxAge: Int) -> Cookie {
        Cookie(name: AuthenticateMiddleware.sessionCookie, value: value, maxAge: maxAge, path: "/",
               secure: controller.config.uiSecureCookies, httpOnly: true, sameSite: .strict)
    }

    func addAccessRoutes(readonly: RouterGroup<AdminRequestContext>, admin group: RouterGroup<AdminRequestContext>) {
        readonly.get("auth/me") { _, context -> MeDTO in
            let principal = context.principal!
            let kind = if case .token = principal.kind { "token" } else { "session" }
            return MeDTO(name: principal.name, kind: kind, scope: principal.scope.rawValue, csrfToken: principal.csrfToken, expiresAt: nil)
        }
        readonly.post("auth/logout") { _, context -> Response in
            guard let token = context.sessionToken, let principal = context.principal, principal.csrfToken != nil else {
                throw Problem(.badRequest, "only a login session can log out; revoke a token instead (DELETE /api/tokens/{id})")
            }
            try await admin.logout(sessionToken: token, principal: principal, sourceIP: context.sourceIP)
            var response = Response(status: .noContent)
            response.setCookie(sessionCookie(value: "", maxAge: 0))
            return response
        }

        group.get("tokens") { _, _ -> [TokenDTO] in
            try await admin.tokens().map { TokenDTO($0) }
        }
        group.post("tokens") { request, context -> Response in
            let form = try await Self.body(TokenCreateRequest.self, request, context)
            guard let scope = TokenScope(rawValue: form.scope) else {
                throw Problem(.badRequest, "scope must be readonly, monitor or admin, not \"\(form.scope)\"")
            }
            let created = try await admin.createToken(name: form.name, scope: scope,
                                                      lifetime: try AdminService.parseLifetime(form.expiresIn ?? "never"),
                                                      by: context.actor)
            return try Self.json(TokenDTO(created.token, secret: created.secret), status: .created)
        }
        group.delete("tokens/:id") { _, context -> TokenDTO in
            TokenDTO(try await admin.revokeToken(try context.parameters.require("id"), by: context.actor))
        }

        group.get("audit") { request, _ -> AuditPage in
            let query = request.uri.queryParameters
            let limit = try Self.paging(request).limit
            var audit = AuditQuery(action: query.get("action"), actor: query.get("actor"), target: query.get("target"), limit: limit)
            if let since = query.get("since") { audit.since = try Self.time(since, name: "since") }
            if let before = query.get("before") {
                let parts = before.split(separator: "~", maxSplits: 1)
                guard parts.count == 2, let at = Int64(parts[0]) else {
                    throw Problem(.badRequest, "before must be the next_before of a previous page")
                }
                audit.before = (at, String(parts[1]))
            }
            let filter = audit
            let rows = try await store.read { tx in try tx.auditRows(filter) }
            let next = rows.count == limit ? rows.last.map { "\($0.at)~\($0.id)" } : nil
            return AuditPage(items: rows.map(AuditRowDTO.init), limit: limit, nextBefore: next)
        }
        group.get("audit/verify") { _, _ -> Response in
            let check = try await service.verifyAudit()
            return try Self.json(AuditVerifyDTO(intact: check.intact, rows: check.rows, problem: check.broken?.description))
        }
    }

    struct AuditVerifyDTO: Encodable, Sendable {
        var intact: Bool
        var rows: Int
        var problem: String?
    }

    /// RFC 3339 → µs.
    static func time(_ text: String, name: String) throws -> Int64 {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let date = formatter.date(from: text) ?? ISO8601DateFormatter().date(from: text) else {
            throw Problem(.badRequest, "\(name) must be an RFC 3339 time such as 2026-12-01T10:00:00Z, not \"\(text)\"")
        }
        return Int64(date.timeIntervalSince1970 * 1_000_000)
    }
}
