import Crypto
import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import PharosSpec
import PharosTestSupport
import Synchronization
import Testing
@testable import Coxswain

/// `cox serve` with its admin API on a real loopback socket, driven over HTTP/1.1 and
/// WebSocket like an operator's tools would.
final class AdminFleet: @unchecked Sendable {
    let state: TestState
    let controller: Controller
    let port: Int
    let admin: AdminService
    private var task: Task<Void, any Error>?

    static let password = "correct horse battery staple"
    static let adminEmail = "ops@example.com"

    init(reconcileInterval: Int = 30) async throws {
        var config = CoxConfig()
        config.accountsSync = false
        config.uiListen = "127.0.0.1:0"
        config.relayPublicEndpoint = "relay.example.com:8443"
        config.reconcileInterval = reconcileInterval
        config.unreachableAfterPolls = 1
        config.nodeCallTimeoutSeconds = 1
        state = try TestState(config: config)
        controller = Controller(config: config, store: state.store, pki: state.pki, service: state.service)
        admin = AdminService(fleet: state.service)
        let user = try await state.service.addUser(name: "Ops", email: Self.adminEmail, role: .admin, by: state.actor)
        _ = try await AccountService(fleet: state.service).setPassword(user: user.id, password: Self.password, by: state.actor)
        let served = Mutex<Int?>(nil)
        let controller = self.controller
        task = Task { try await controller.serve(logger: AccountFleet.logger) { s in served.withLock { $0 = s.adminPort } } }
        for _ in 0..<400 where served.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(25)) }
        guard let port = served.withLock({ $0 }) else { throw HarnessError("cox serve did not come up") }
        self.port = port
    }

    func stop() async {
        task?.cancel()
        _ = await task?.result
    }

    func token(_ name: String, _ scope: TokenScope) async throws -> String {
        try await admin.createToken(name: name, scope: scope, lifetime: .seconds(3600), by: state.actor).secret
    }

    func send(_ method: String, _ path: String, auth: [(String, String)] = [], json: String? = nil) async throws -> HTTPTestClient.Response {
        var headers = auth
        if json != nil { headers.append(("Content-Type", "application/json")) }
        return try await HTTPTestClient.send(method, path, port: port, headers: headers, body: json.map { Array($0.utf8) })
    }

    static func bearer(_ token: String) -> [(String, String)] { [("Authorization", "Bearer \(token)")] }

    func json(_ response: HTTPTestClient.Response) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any], "not a JSON object: \(response.text)")
    }
}

@Suite struct AdminAPITests {
    /// Every route, for every kind of caller: no credential, an expired token, a revoked one,
    /// readonly, monitor and admin. Expected: 401, 401, 401, then 403 below the route's scope and
    /// its success status at or above it.
    @Test func scopeMatrixOverEveryRoute() async throws {
        let fleet = try await AdminFleet()
        defer { Task { await fleet.stop() } }
        let state = fleet.state
        let node = try await state.readyNode(name: "n-matrix")
        let doomedNode = try await state.readyNode(name: "n-doomed")
        let alice = try await state.service.addUser(name: "Alice", email: "alice@example.com", by: state.actor)
        let bob = try await state.service.addUser(name: "Bob", email: "bob@example.com", by: state.actor)
        let device = try await state.service.addDevice(user: alice.id, name: "phone", by: state.actor).value
        let spec = try await state.service.createProfileSpec(user: alice.id, name: "doomed", node: node.id, protocol: .amneziawg, by: state.actor).value
        _ = try await state.readyNode(name: "n-exit")
        _ = try await state.service.addPath(name: "out", hops: ["n-matrix", "n-exit"], by: state.actor)
        let victimToken = try await fleet.admin.createToken(name: "victim", scope: .readonly, lifetime: nil, by: state.actor).token
        let (alert, _) = try await state.store.write { tx in
            try tx.raiseAlert(kind: "fleet_health", severity: .warning, dedupKey: "test:1", nodeID: node.id)
        }
        let (alert2, _) = try await state.store.write { tx in
            try tx.raiseAlert(kind: "fleet_health", severity: .warning, dedupKey: "test:2", nodeID: node.id)
        }
        let key = Base64.standard(Array(Curve25519.KeyAgreement.PrivateKey().publicKey.rawRepresentation))

        let tokens = (readonly: try await fleet.token("ro", .readonly), monitor: try await fleet.token("mon", .monitor),
                      admin: try await fleet.token("adm", .admin), expired: try await fleet.token("old", .admin),
                      revoked: try await fleet.token("gone", .admin))
        try state.store.executeRawForTesting("UPDATE api_tokens SET expires_at = 1 WHERE name = 'old'")
        _ = try await fleet.admin.revokeToken("gone", by: state.actor)

        struct Route { var method: String; var path: String; var body: String?; var scope: TokenScope; var success: Int }
        let routes: [Route] = [
            Route(method: "GET", path: "/api/auth/me", scope: .readonly, success: 200),
            Route(method: "GET", path: "/api/nodes", scope: .readonly, success: 200),
            Route(method: "GET", path: "/api/nodes?status=active&limit=5", scope: .readonly, success: 200),
            Route(method: "GET", path: "/api/nodes/\(node.id)", scope: .readonly, success: 200),
            Route(method: "GET", path: "/api/relays", scope: .readonly, success: 200),
            Route(method: "GET", path: "/api/users", scope: .readonly, success: 200),
            Route(method: "GET", path: "/api/users/\(alice.id)", scope: .readonly, success: 200),
            Route(method: "GET", path: "/api/users/\(alice.id)/devices", scope: .readonly, success: 200),
            Route(method: "GET", path: "/api/profiles", scope: .readonly, success: 200),
            Route(method: "GET", path: "/api/paths", scope: .readonly, success: 200),
            Route(method: "GET", path: "/api/node-links", scope: .readonly, success: 200),
            Route(method: "GET", path: "/api/device-exits", scope: .readonly, success: 200),
            Route(method: "GET", path: "/api/ssh/key", scope: .readonly, success: 404),
            Route(method: "POST", path: "/api/ssh/key", scope: .admin, success: 200),
            Route(method: "GET", path: "/api/ssh-key", scope: .readonly, success: 200),
            Route(method: "GET", path: "/api/ssh/host-keys", scope: .readonly, success: 200),
            Route(method: "GET", path: "/api/sessions", scope: .monitor, success: 200),
            Route(method: "GET", path: "/api/sessions?state=open", scope: .monitor, success: 200),
            Route(method: "GET", path: "/api/alerts", scope: .monitor, success: 200),
            Route(method: "GET", path: "/api/analytics/status", scope: .monitor, success: 200),
            Route(method: "GET", path: "/metrics", scope: .monitor, success: 200),
            Route(method: "GET", path: "/ws/events", scope: .monitor, success: 426),
            Route(method: "GET", path: "/api/audit", scope: .admin, success: 200),
            Route(method: "GET", path: "/api/audit/verify", scope: .admin, success: 200),
            Route(method: "GET", path: "/api/tokens", scope: .admin, success: 200),
            Route(method: "POST", path: "/api/tokens", body: #"{"name":"made-by-api","scope":"monitor","expires_in":"30d"}"#, scope: .admin, success: 201),
            Route(method: "DELETE", path: "/api/tokens/\(victimToken.id)", scope: .admin, success: 200),
            Route(method: "PATCH", path: "/api/nodes/\(node.id)", body: #"{"version":\#(node.version),"region":"eu-west"}"#, scope: .admin, success: 200),
            Route(method: "POST", path: "/api/nodes/\(node.id)/push", scope: .admin, success: 200),
            Route(method: "DELETE", path: "/api/nodes/\(doomedNode.id)", scope: .admin, success: 200),
            Route(method: "POST", path: "/api/users", body: #"{"name":"Carol","email":"carol@example.com"}"#, scope: .admin, success: 201),
            Route(method: "PATCH", path: "/api/users/\(alice.id)", body: #"{"version":\#(alice.version),"name":"Alice A."}"#, scope: .admin, success: 200),
            Route(method: "POST", path: "/api/users/\(alice.id)/invite", scope: .admin, success: 201),
            Route(method: "POST", path: "/api/users/\(alice.id)/devices", body: #"{"name":"laptop","encryption_key":"\#(key)"}"#, scope: .admin, success: 201),
            Route(method: "POST", path: "/api/paths/out/provision", scope: .admin, success: 200),
            Route(method: "POST", path: "/api/devices/\(device.id)/bind", body: #"{"path":"out"}"#, scope: .admin, success: 200),
            Route(method: "DELETE", path: "/api/devices/\(device.id)/bind", scope: .admin, success: 200),
            Route(method: "DELETE", path: "/api/devices/\(device.id)", scope: .admin, success: 200),
            Route(method: "POST", path: "/api/profiles", body: #"{"name":"eu","user":"\#(alice.id)","node":"\#(node.id)"}"#, scope: .admin, success: 201),
            Route(method: "DELETE", path: "/api/profiles/\(spec.id)", scope: .admin, success: 200),
            Route(method: "POST", path: "/api/alerts/\(alert.id)/ack", scope: .admin, success: 200),
            Route(method: "POST", path: "/api/alerts/\(alert2.id)/resolve", body: #"{"version":1}"#, scope: .admin, success: 200),
            Route(method: "DELETE", path: "/api/users/\(bob.id)", scope: .admin, success: 200),
        ]
        let callers: [(name: String, auth: [(String, String)], scope: TokenScope?)] = [
            ("nobody", [], nil), ("expired", AdminFleet.bearer(tokens.expired), nil), ("revoked", AdminFleet.bearer(tokens.revoked), nil),
            ("readonly", AdminFleet.bearer(tokens.readonly), .readonly), ("monitor", AdminFleet.bearer(tokens.monitor), .monitor),
            ("admin", AdminFleet.bearer(tokens.admin), .admin),
        ]
        let before = try await state.store.read { tx in try tx.auditChain().count }
        var mutations = 0
        for route in routes {
            for caller in callers {
                let response = try await fleet.send(route.method, route.path, auth: caller.auth, json: route.body)
                let expected: Int
                if let scope = caller.scope { expected = scope >= route.scope ? route.success : 403 } else { expected = 401 }
                #expect(response.status == expected, "\(route.method) \(route.path) as \(caller.name): \(response.status) \(response.text)")
                if response.status >= 400 {
                    #expect(response.header("content-type") == "application/problem+json", "\(route.path): \(response.headers)")
                }
                if caller.name == "expired", response.status == 401 { #expect(response.text.contains("expired")) }
                if caller.name == "revoked", response.status == 401 { #expect(response.text.contains("revoked")) }
            }
            if route.method != "GET" { mutations += 1 }
        }

        // Every mutation the admin token made left its audit row, naming the token and the socket's address.
        let rows = try await state.store.read { tx in try tx.auditChain() }.dropFirst(before)
        let byToken = rows.filter { $0.actor == "token:adm" }
        #expect(byToken.count == mutations, "\(byToken.map(\.action))")
        #expect(byToken.allSatisfy { $0.actorKind == "token" && $0.sourceIP == "127.0.0.1" && $0.result == "ok" })
        #expect(Set(byToken.map(\.action)).isSuperset(of: ["token.create", "token.revoke", "node.update", "node.push", "node.rm", "user.add",
                                                            "user.update", "enroll.invite", "device.add", "device.rm", "device.bind", "device.unbind", "path.provision", "profile.create",
                                                            "profile.rm", "alert.ack", "alert.resolve", "user.rm"]))
        #expect(AuditChain.verify(try await state.store.read { tx in try tx.auditChain() }) == nil)
    }

    @Test func aStaleWriteIsRefusedWith409AndChangesNothing() async throws {
        let fleet = try await AdminFleet()
        defer { Task { await fleet.stop() } }
        let node = try await fleet.state.readyNode(name: "n-stale")
        let auth = AdminFleet.bearer(try await fleet.token("adm", .admin))
        let read = try fleet.json(try await fleet.send("GET", "/api/nodes/\(node.id)", auth: auth))
        let version = try #require(read["version"] as? Int)
        let first = try await fleet.send("PATCH", "/api/nodes/\(node.id)", auth: auth, json: #"{"version":\#(version),"name":"n-renamed"}"#)
        #expect(first.status == 200, "\(first.text)")
        let stale = try await fleet.send("PATCH", "/api/nodes/\(node.id)", auth: auth, json: #"{"version":\#(version),"region":"lost-update"}"#)
        #expect(stale.status == 409)
        #expect(stale.text.contains("changed by someone else"), "\(stale.text)")
        let after = try await fleet.state.store.read { tx in try tx.node(node.id) }
        #expect(after.name == "n-renamed" && after.region == "test" && after.version == Int64(version) + 1)
        let updates = try await fleet.state.store.read { tx in try tx.auditRows(AuditQuery(action: "node.update")) }
        #expect(updates.count == 1, "the refused write must leave no audit row")

        let user = try await fleet.state.service.addUser(name: "U", email: "u@example.com", by: fleet.state.actor)
        _ = try await fleet.send("PATCH", "/api/users/\(user.id)", auth: auth, json: #"{"version":\#(user.version),"status":"disabled"}"#)
        let staleUser = try await fleet.send("PATCH", "/api/users/\(user.id)", auth: auth, json: #"{"version":\#(user.version),"name":"X"}"#)
        #expect(staleUser.status == 409)
    }

    @Test func badInputGetsASpecificProblem() async throws {
        let fleet = try await AdminFleet()
        defer { Task { await fleet.stop() } }
        let auth = AdminFleet.bearer(try await fleet.token("adm", .admin))
        let cases: [(String, String, String?, Int, String)] = [
            ("POST", "/api/users", #"{"name":"x","email":"not-an-email"}"#, 400, "is not an e-mail address"),
            ("POST", "/api/users", #"{"email":"a@example.com"}"#, 400, "the field name is missing"),
            ("POST", "/api/users", "{not json", 400, "not valid JSON"),
            ("GET", "/api/nodes?limit=0", nil, 400, "limit must be 1 to 1000"),
            ("GET", "/api/nodes/nod_doesnotexist0000", nil, 404, "no node nod_doesnotexist0000"),
            ("PATCH", "/api/nodes/nod_doesnotexist0000", #"{"region":"x"}"#, 400, "the field version is missing"),
            ("POST", "/api/tokens", #"{"name":"t","scope":"root"}"#, 400, "scope must be readonly, monitor or admin"),
            ("POST", "/api/tokens", #"{"name":"t","scope":"admin","expires_in":"soon"}"#, 400, "is not a lifetime"),
            ("POST", "/api/profiles", #"{"name":"p","user":"nobody@example.com","node":"n"}"#, 404, "no user nobody@example.com"),
            ("GET", "/api/no-such-route", nil, 404, "Not Found"),
        ]
        for (method, path, body, status, words) in cases {
            let response = try await fleet.send(method, path, auth: auth, json: body)
            #expect(response.status == status, "\(method) \(path): \(response.text)")
            #expect(response.text.contains(words), "\(method) \(path): \(response.text)")
        }
    }

    @Test func cookieLoginNeedsCSRFForChangesIsThrottledAndAudited() async throws {
        let fleet = try await AdminFleet()
        defer { Task { await fleet.stop() } }
        let wrong = try await fleet.send("POST", "/api/auth/login", json: #"{"email":"ops@example.com","password":"nope"}"#)
        #expect(wrong.status == 401)
        #expect(wrong.cookie("cox_session") == nil)

        let login = try await fleet.send("POST", "/api/auth/login", json: #"{"email":"OPS@example.com","password":"\#(AdminFleet.password)"}"#)
        #expect(login.status == 200, "\(login.text)")
        let setCookie = try #require(login.headers("set-cookie").first { $0.hasPrefix("cox_session=") })
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] { #expect(setCookie.contains(attribute), "\(setCookie)") }
        #expect(!setCookie.contains("Secure"), "plain http on localhost: no Secure flag unless ui.secure_cookies")
        let session = try #require(login.cookie("cox_session"))
        let csrf = try #require(try fleet.json(login)["csrf_token"] as? String)
        let cookie = [("Cookie", "cox_session=\(session)")]

        #expect(try await fleet.send("GET", "/api/nodes", auth: cookie).status == 200)
        let noCSRF = try await fleet.send("POST", "/api/users", auth: cookie, json: #"{"name":"Dave"}"#)
        #expect(noCSRF.status == 403)
        #expect(noCSRF.text.contains("X-CSRF-Token"))
        let wrongCSRF = try await fleet.send("POST", "/api/users", auth: cookie + [("X-CSRF-Token", String(repeating: "0", count: 64))], json: #"{"name":"Dave"}"#)
        #expect(wrongCSRF.status == 403)
        let withCSRF = try await fleet.send("POST", "/api/users", auth: cookie + [("X-CSRF-Token", csrf)], json: #"{"name":"Dave"}"#)
        #expect(withCSRF.status == 201, "\(withCSRF.text)")
        let added = try await fleet.state.store.read { tx in try tx.auditRows(AuditQuery(action: "user.add")) }.first
        #expect(added?.actor == AdminFleet.adminEmail && added?.actorKind == "session" && added?.sourceIP == "127.0.0.1")

        let logout = try await fleet.send("POST", "/api/auth/logout", auth: cookie + [("X-CSRF-Token", csrf)])
        #expect(logout.status == 204)
        let after = try await fleet.send("GET", "/api/nodes", auth: cookie)
        #expect(after.status == 401 && after.text.contains("log in again"))

        // A non-admin with a password cannot log in to the admin API.
        let user = try await fleet.state.service.addUser(name: "Eve", email: "eve@example.com", by: fleet.state.actor)
        _ = try await AccountService(fleet: fleet.state.service).setPassword(user: user.id, password: "another long password", by: fleet.state.actor)
        #expect(try await fleet.send("POST", "/api/auth/login", json: #"{"email":"eve@example.com","password":"another long password"}"#).status == 401)

        // Five failures from one address in five minutes (the success above started the count
        // over; Eve's refused login was the first): the sixth attempt is refused without a check.
        for _ in 0..<4 { _ = try await fleet.send("POST", "/api/auth/login", json: #"{"email":"ops@example.com","password":"guess"}"#) }
        let throttled = try await fleet.send("POST", "/api/auth/login", json: #"{"email":"ops@example.com","password":"\#(AdminFleet.password)"}"#)
        #expect(throttled.status == 429, "\(throttled.text)")
        #expect(Int(throttled.header("retry-after") ?? "") ?? 0 > 0)
        let failures = try await fleet.state.store.read { tx in try tx.auditRows(AuditQuery(action: "auth.login")) }.filter { $0.result == "error" }
        #expect(failures.count >= 6 && failures.allSatisfy { $0.sourceIP == "127.0.0.1" }, "\(failures.map(\.error))")
    }

    /// A page on another site that makes the admin's browser POST logins must not spend the
    /// login budget of the admin's own address (issue #19 item 4).
    @Test func crossSiteLoginsAreRefusedBeforeTheyCount() async throws {
        let fleet = try await AdminFleet()
        defer { Task { await fleet.stop() } }
        for _ in 0..<10 {
            let forged = try await fleet.send("POST", "/api/auth/login", auth: [("Origin", "https://evil.example")],
                                              json: #"{"email":"ops@example.com","password":"guess"}"#)
            #expect(forged.status == 403 && forged.text.contains("cross-site"), "\(forged.text)")
        }
        let form = try await HTTPTestClient.send("POST", "/ui/login", port: fleet.port,
                                                 headers: [("Origin", "null"), ("Content-Type", "application/x-www-form-urlencoded")],
                                                 body: Array("email=ops%40example.com&password=guess".utf8))
        #expect(form.status == 403)
        let sameSite = try await fleet.send("POST", "/api/auth/login", auth: [("Origin", "http://127.0.0.1:\(fleet.port)")],
                                            json: #"{"email":"ops@example.com","password":"\#(AdminFleet.password)"}"#)
        #expect(sameSite.status == 200, "the admin still logs in after the forged attempts: \(sameSite.text)")
    }

    @Test func liveEventsReachMonitorSubscribersOnly() async throws {
        let fleet = try await AdminFleet(reconcileInterval: 1)
        defer { Task { await fleet.stop() } }
        let monitor = try await fleet.token("mon", .monitor), readonly = try await fleet.token("ro", .readonly)
        let received = Mutex<[String]>([])
        let url = "ws://127.0.0.1:\(fleet.port)/ws/events"
        let logger = Logger(label: "ws.test")
        let subscriber = Task {
            try await WebSocketClient.connect(url: url, configuration: .init(additionalHeaders: [.authorization: "Bearer \(monitor)"]),
                                              logger: logger) { inbound, _, _ in
                for try await message in inbound.messages(maxSize: 1 << 16) {
                    if case .text(let text) = message { received.withLock { $0.append(text) } }
                }
            }
        }
        defer { subscriber.cancel() }
        try await Task.sleep(for: .milliseconds(500))
        // A node that does not answer: the next sweep marks it unreachable and raises fleet_health.
        let node = try await fleet.state.readyNode(name: "n-dead", address: "127.0.0.1:\(LoopbackPorts.free(1)[0])")
        for _ in 0..<100 where !received.withLock({ $0.contains { $0.contains("\"fleet_health\"") } }) {
            try await Task.sleep(for: .milliseconds(100))
        }
        let messages = received.withLock { $0 }
        let alert = try #require(messages.first { $0.contains("\"kind\":\"alert\"") }, "\(messages)")
        #expect(alert.contains("\"node_id\":\"\(node.id)\"") && alert.contains("\"status\":\"open\""))
        #expect(messages.contains { $0.contains("\"kind\":\"node_status\"") && $0.contains("\"unreachable\"") })

        for auth in [nil, readonly] {
            var headers: HTTPFields = [:]
            if let auth { headers[.authorization] = "Bearer \(auth)" }
            await #expect(throws: (any Error).self, "a \(auth == nil ? "credential-less" : "readonly") WebSocket must be refused") {
                _ = try await WebSocketClient.connect(url: url, configuration: .init(additionalHeaders: headers), logger: logger) { _, _, _ in }
            }
        }
        let metrics = try await fleet.send("GET", "/metrics", auth: AdminFleet.bearer(monitor))
        #expect(metrics.text.contains(#"pharos_nodes{status="unreachable"} 1"#), "\(metrics.text.prefix(2000))")
        #expect(metrics.text.contains("pharos_live_subscribers"))
        #expect(metrics.text.contains("pharos_http_requests_total"))
        #expect(metrics.text.contains("pharos_reconcile_sweeps_total"))
    }

    @Test func pagesNeedALoginAndFormsTheirCSRFToken() async throws {
        let fleet = try await AdminFleet()
        defer { Task { await fleet.stop() } }
        _ = try await fleet.state.readyNode(name: "n-page")
        let anonymous = try await fleet.send("GET", "/ui/")
        #expect(anonymous.status == 303 && anonymous.header("location") == "/ui/login")
        let cookie = try await pageSession(fleet)
        let overview = try await fleet.send("GET", "/ui/", auth: cookie)
        #expect(overview.status == 200)
        #expect(overview.text.contains("n-page") && overview.text.contains("/ui/live.js"))
        #expect(overview.header("content-security-policy")?.contains("default-src 'self'") == true)
        let forged = try await HTTPTestClient.send("POST", "/ui/users", port: fleet.port,
                                                   headers: cookie + [("Content-Type", "application/x-www-form-urlencoded")],
                                                   body: Array("_csrf=forged&name=Mallory".utf8))
        #expect(forged.status == 403)
        #expect(try await fleet.state.store.read { tx in try tx.users() }.allSatisfy { $0.name != "Mallory" })
        // Escaping: a name with markup is shown as text.
        _ = try await fleet.state.service.addUser(name: "<script>alert(1)</script>", email: nil, by: fleet.state.actor)
        let users = try await fleet.send("GET", "/ui/users", auth: cookie)
        #expect(!users.text.contains("<script>alert(1)</script>") && users.text.contains("&lt;script&gt;"))
    }

    /// Logs in on the login form; the session cookie as a header.
    func pageSession(_ fleet: AdminFleet) async throws -> [(String, String)] {
        let body = "email=ops%40example.com&password=\(AdminFleet.password.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)"
        let login = try await HTTPTestClient.send("POST", "/ui/login", port: fleet.port,
                                                  headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array(body.utf8))
        #expect(login.status == 303 && login.header("location") == "/ui/")
        return [("Cookie", "cox_session=\(try #require(login.cookie("cox_session")))")]
    }

    /// The Paths page: add a path from its form, switch a device's exit, a refusal shown as an
    /// error line with nothing changed, unbind; a form without the session's CSRF token is refused.
    @Test func thePathsPageAddsAPathAndSwitchesAnExit() async throws {
        let fleet = try await AdminFleet()
        defer { Task { await fleet.stop() } }
        let state = fleet.state
        let entry = try await state.readyNode(name: "n-entry")
        let exit = try await state.readyNode(name: "n-exit")
        _ = try await state.service.addUser(name: "Alice", email: "alice@example.com", by: state.actor)
        let device = try await state.service.addDevice(user: "alice@example.com", name: "laptop", by: state.actor).value
        _ = try await state.service.createProfileSpec(user: "alice@example.com", name: "direct", node: entry.id, protocol: .amneziawg, by: state.actor)
        let cookie = try await pageSession(fleet)
        let empty = try await fleet.send("GET", "/ui/paths", auth: cookie)
        #expect(empty.status == 200 && empty.text.contains("No path yet"))
        let csrf = try #require(empty.text.firstMatch(of: /name="_csrf" value="([^"]+)"/)?.1)
        func post(_ path: String, _ fields: String, token: Substring? = nil) async throws -> HTTPTestClient.Response {
            try await HTTPTestClient.send("POST", path, port: fleet.port, headers: cookie + [("Content-Type", "application/x-www-form-urlencoded")],
                                          body: Array("_csrf=\(token ?? csrf)&\(fields)".utf8))
        }

        let added = try await post("/ui/paths", "name=out&entry=\(entry.id)&mid=&exit=\(exit.id)")
        #expect(added.status == 303 && added.header("location")?.contains("ok=added") == true, "\(added.headers)")
        let path = try await state.store.read { tx in try tx.path("out") }
        #expect(path.hops == [entry.id, exit.id])

        let forged = try await post("/ui/paths/bind", "device=\(device.id)&path=\(path.id)", token: "forged")
        #expect(forged.status == 403)
        #expect(try await state.store.read { tx in try tx.exitBindings() }.isEmpty)
        let bound = try await post("/ui/paths/bind", "device=\(device.id)&path=\(path.id)")
        #expect(bound.status == 303 && bound.header("location")?.contains("ok=") == true, "\(bound.headers)")
        #expect(try await state.store.read { tx in try tx.exitBinding(device: device.id) }?.pathID == path.id)
        let page = try await fleet.send("GET", "/ui/paths", auth: cookie)
        #expect(page.text.contains("id=\"exit-\(device.id)\"") && page.text.contains("n-entry → n-exit"))

        let refused = try await post("/ui/paths/\(path.id)/delete", "")
        #expect(refused.status == 303 && refused.header("location")?.contains("error=") == true, "\(refused.headers)")
        #expect(try await state.store.read { tx in try tx.paths().count } == 1)
        let unbound = try await post("/ui/devices/\(device.id)/unbind", "")
        #expect(unbound.status == 303 && unbound.header("location")?.contains("ok=") == true)
        #expect(try await state.store.read { tx in try tx.exitBindings() }.isEmpty)
        let removed = try await post("/ui/paths/\(path.id)/delete", "")
        #expect(removed.header("location")?.contains("ok=removed") == true)
    }
}
