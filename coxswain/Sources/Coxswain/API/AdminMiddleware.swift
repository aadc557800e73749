import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Outermost: a thrown error becomes a problem response (a specific sentence; unexpected
/// errors are logged and answered without their details), and every request's route,
/// status and latency go to the metrics.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = AdminRequestContext
    let metrics: ControllerMetrics
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var status = 500
        defer {
            metrics.recordRequest(route: context.endpointPath ?? "unmatched", method: request.method.rawValue, status: status,
                                  duration: ContinuousClock.now - start)
        }
        do {
            let response = try await next(request, context)
            status = response.status.code
            return response
        } catch {
            let problem = Problem.from(error) ?? {
                logger.error("admin API request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
                return Problem(.internalServerError, "the controller could not complete this request; its log has the cause")
            }()
            status = problem.status.code
            return try problem.response(from: request, context: context)
        }
    }
}

/// Resolves the caller: `Authorization: Bearer cox_…` or the `cox_session` cookie. A
/// credential that does not check out leaves no principal and says why in the context.
struct AuthenticateMiddleware: RouterMiddleware {
    typealias Context = AdminRequestContext
    static let sessionCookie = "cox_session"
    let admin: AdminService

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if let authorization = request.headers[.authorization] {
            if authorization.lowercased().hasPrefix("bearer ") {
                let secret = authorization.dropFirst(7).trimmingCharacters(in: .whitespaces)
                switch try await admin.principal(bearer: secret) {
                case .success(let principal): context.principal = principal
                case .failure(let refusal): context.credentialProblem = refusal.description
                }
            } else {
                context.credentialProblem = "the Authorization header must be \"Bearer cox_…\""
            }
        } else if let cookie = request.cookies[Self.sessionCookie]?.value, !cookie.isEmpty {
            context.sessionToken = cookie
            if let principal = try await admin.principal(sessionToken: cookie) {
                context.principal = principal
            } else {
                context.credentialProblem = "your session expired or was logged out; log in again"
            }
        }
        return try await next(request, context)
    }
}

/// The scope a group of routes needs: GET = readonly, live and monitoring = monitor,
/// mutations = admin; an admin session satisfies all. A cookie-authenticated mutation must
/// also carry the session's CSRF token in `X-CSRF-Token`.
struct RequireScope: RouterMiddleware {
    typealias Context = AdminRequestContext
    static let csrfHeader = HTTPField.Name("X-CSRF-Token")!
    let scope: TokenScope

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let principal = context.principal else {
            throw Problem(.unauthorized,
                          context.credentialProblem ?? "log in (POST /api/auth/login) or send Authorization: Bearer cox_…",
                          headers: [.wwwAuthenticate: "Bearer realm=\"pharos\""])
        }
        guard principal.scope >= scope else {
            throw Problem(.forbidden, "this needs a \(scope.rawValue) token or an admin login; \(principal.name) has \(principal.scope.rawValue)")
        }
        if let expected = principal.csrfToken, ![.get, .head, .options].contains(request.method) {
            guard let sent = request.headers[Self.csrfHeader], constantTimeEqual(sent, expected) else {
                throw Problem(.forbidden, "a logged-in change needs the X-CSRF-Token header (csrf_token from the login or GET /api/auth/me)")
            }
        }
        return try await next(request, context)
    }
}

func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    guard x.count == y.count else { return false }
    return zip(x, y).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
}
