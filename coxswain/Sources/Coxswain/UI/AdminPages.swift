import Foundation
import HTTPTypes
import Hummingbird
import Mustache
import NIOCore

/// The compiled templates and what every page shares: the navigation, the logged-in admin,
/// the CSRF token for its forms, a one-line flash or error.
struct AdminPages: Sendable {
    let library: MustacheLibrary

    static let sections: [(href: String, label: String)] = [
        ("/ui/", "Fleet"), ("/ui/users", "Users"), ("/ui/profiles", "Profiles"), ("/ui/paths", "Paths"), ("/ui/sessions", "Sessions"),
        ("/ui/servers", "Servers"), ("/ui/alerts", "Alerts"), ("/ui/audit", "Audit log"), ("/ui/tokens", "API tokens"),
    ]

    init() throws {
        var library = MustacheLibrary()
        let templates: [(String, String)] = [
            ("header", PageTemplates.header), ("footer", PageTemplates.footer), ("live_feed", PageTemplates.liveFeed),
            ("login", PageTemplates.login), ("overview", PageTemplates.overview), ("users", PageTemplates.users),
            ("invite", PageTemplates.invite), ("profiles", PageTemplates.profiles), ("paths", PageTemplates.paths),
            ("sessions", PageTemplates.sessions),
            ("alerts", PageTemplates.alerts), ("servers", PageTemplates.servers), ("audit", PageTemplates.audit), ("tokens", PageTemplates.tokens),
            ("not_found", PageTemplates.notFound),
        ]
        for (name, text) in templates { try library.register(text, named: name) }
        self.library = library
    }

    /// Renders `template` with the page's own values over the shared ones.
    func render(_ template: String, title: String, path: String, principal: AdminPrincipal?, request: Request,
                status: HTTPResponse.Status = .ok, live: Bool = false, values: [String: Any] = [:]) -> Response {
        var context: [String: Any] = [
            "title": title,
            "nav": Self.sections.map { ["href": $0.href, "label": $0.label, "current": $0.href == path] as [String: Any] },
            "live": live,
        ]
        if let principal {
            context["user"] = principal.name
            context["csrf"] = principal.csrfToken ?? ""
        }
        let query = request.uri.queryParameters
        if let flash = query.get("ok"), !flash.isEmpty { context["flash"] = String(flash.prefix(300)) }
        if let error = query.get("error"), !error.isEmpty { context["error"] = String(error.prefix(500)) }
        for (key, value) in values { context[key] = value }
        let html = library.render(context, withTemplate: template) ?? "template \(template) is missing"
        return Response(status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                                                  .contentSecurityPolicy: Self.contentSecurityPolicy,
                                                  HTTPField.Name("X-Frame-Options")!: "DENY"],
                        body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// Scripts and styles only from our own origin; images also as data: URLs (the QR code).
    static let contentSecurityPolicy = "default-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'"

    /// Post/redirect/get: back to `path` with a flash (`ok`) or an `error` line.
    static func redirect(_ path: String, ok: String? = nil, error: String? = nil) -> Response {
        var target = path
        var items: [String] = []
        if let ok { items.append("ok=" + escape(ok)) }
        if let error { items.append("error=" + escape(error)) }
        if !items.isEmpty { target += "?" + items.joined(separator: "&") }
        return Response.redirect(to: target, type: .normal)
    }

    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? ""
    }

    /// A time as the pages show it: `2026-12-02 04:55:12Z`.
    static func time(_ micros: Int64?) -> String {
        guard let micros else { return "—" }
        let text = LiveEvent.timestamp(micros)
        return text.prefix(19).replacingOccurrences(of: "T", with: " ") + "Z"
    }
}
