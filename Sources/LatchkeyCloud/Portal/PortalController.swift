import Foundation
import Hummingbird
import LatchkeyProtocol

/// The web portal: server-rendered pages over the same domain services as the API, with cookie sessions and a CSRF
/// token on every form.
struct PortalController: Sendable {
    let renderer: PortalRenderer
    let accounts: AccountService
    let sites: SiteService
    let devices: DeviceService
    let resets: PasswordResetService
    let inbox: InboxService
    let compatibility: CompatibilityList
    let clock: LatchkeyClock
    let sessionLifetime: TimeInterval
    /// The notification stream, reached here with the session cookie (a browser's EventSource sends no bearer).
    let events: NotificationController

    typealias Handler = @Sendable (Request, PortalVisit) async throws -> Response

    func addRoutes(to router: Router<AppRequestContext>) {
        router.get("/") { request, context in
            try await page(request, context) { _, visit in
                guard let account = visit.account else { return visit.redirect(to: "/signin") }
                return visit.redirect(to: account.role == .owner ? "/notifications" : "/sites")
            }
        }
        router.get("signin") { request, context in try await page(request, context) { renderer.render(SignInPage(), $1) } }
        router.post("signin") { request, context in try await form(request, context, back: "/signin", handler: signIn) }
        router.get("signup") { request, context in try await page(request, context) { renderer.render(SignUpPage(), $1) } }
        router.post("signup") { request, context in try await form(request, context, back: "/signup", handler: signUp) }
        router.post("signout") { request, context in try await form(request, context, back: "/", handler: signOut) }
        router.get("compatibility") { request, context in try await page(request, context, handler: compatibilityPage) }
        router.get("events") { request, context in
            var context = context
            context.account = await visit(request).account
            return try await events.stream(request, context: context)
        }

        let pages = PortalPages(controller: self)
        router.get("sites") { request, context in try await page(request, context, signedIn: true, handler: pages.sites) }
        router.post("sites") { request, context in try await form(request, context, back: "/sites", handler: pages.createSite) }
        router.get("sites/:id") { request, context in try await page(request, context, signedIn: true) { try await pages.site($0, $1, context) } }
        router.post("sites/:id/devices") { request, context in
            try await form(request, context, back: "/sites") { try await pages.bind($0, $1, context) }
        }
        router.post("sites/:id/authorizations") { request, context in
            try await form(request, context, back: "/sites") { try await pages.authorize($0, $1, context) }
        }
        router.post("sites/:id/authorizations/:installerId/revoke") { request, context in
            try await form(request, context, back: "/sites") { try await pages.revoke($0, $1, context) }
        }
        router.get("devices/:serial/history") { request, context in
            try await page(request, context, signedIn: true) { try await pages.history($0, $1, context) }
        }
        router.get("reset") { request, context in try await page(request, context, signedIn: true, handler: pages.resetForm) }
        router.post("reset") { request, context in try await form(request, context, back: "/reset", handler: pages.sendReset) }
        router.get("requests") { request, context in try await page(request, context, signedIn: true, handler: pages.requests) }
        router.get("requests/:id") { request, context in
            try await page(request, context, signedIn: true) { try await pages.request($0, $1, context) }
        }
        router.post("requests/:id/cancel") { request, context in
            try await form(request, context, back: "/requests") { try await pages.end($0, $1, context, action: .cancel) }
        }
        router.post("requests/:id/approve") { request, context in
            try await form(request, context, back: "/requests") { try await pages.approve($0, $1, context) }
        }
        router.post("requests/:id/presence") { request, context in
            try await form(request, context, back: "/requests") { try await pages.deliver($0, $1, context) }
        }
        router.post("requests/:id/decline") { request, context in
            try await form(request, context, back: "/notifications") { try await pages.end($0, $1, context, action: .decline) }
        }
        router.get("notifications") { request, context in try await page(request, context, signedIn: true, handler: pages.notifications) }
        router.get("notifications/:id") { request, context in
            try await page(request, context, signedIn: true) { try await pages.notification($0, $1, context) }
        }
    }

    // MARK: - Sessions

    /// Who is signed in, from the session cookie; a stale cookie simply means nobody.
    func visit(_ request: Request) async -> PortalVisit {
        let token = request.cookies[PortalVisit.sessionCookie]?.value
        let account = if let token { try? await accounts.authenticate(token: token) } else { nil as Account? }
        return PortalVisit(request: request, account: account, sessionToken: account == nil ? nil : token)
    }

    /// A GET page: errors become pages in the reader's language; pages behind sign-in send strangers to it.
    func page(_ request: Request, _ context: AppRequestContext, signedIn: Bool = false, handler: Handler) async throws -> Response {
        let visit = await visit(request)
        if signedIn && visit.account == nil { return visit.redirect(to: "/signin") }
        do {
            return try await handler(request, visit)
        } catch {
            return renderer.error(error, visit, back: "/")
        }
    }

    /// A POST form: checks the CSRF token before anything else, then runs the handler; errors become pages.
    func form(_ request: Request, _ context: AppRequestContext, back: String, handler: Handler) async throws -> Response {
        let visit = await visit(request)
        var request = request
        let body = String(buffer: try await request.collectBody(upTo: 64 * 1024))
        guard let sent = FormFields(body)["csrf"], let expected = request.cookies[PortalVisit.csrfCookie]?.value, sent == expected else {
            return renderer.render(ErrorPage(code: "csrf", message: renderer.text("error_csrf", visit), back: back, open_request: nil), visit,
                                   status: .forbidden)
        }
        do {
            request.body = .init(buffer: ByteBuffer(string: body))
            return try await handler(request, visit)
        } catch {
            return renderer.error(error, visit, back: back)
        }
    }

    // MARK: - Public pages

    @Sendable func signIn(_ request: Request, _ visit: PortalVisit) async throws -> Response {
        let fields = try await FormFields(request)
        let (token, session, _) = try await accounts.signIn(email: fields["email"] ?? "", password: fields["password"] ?? "")
        return visit.redirect(to: "/", extraCookies: [sessionCookie(token, until: session.expiresAt)])
    }

    @Sendable func signUp(_ request: Request, _ visit: PortalVisit) async throws -> Response {
        let fields = try await FormFields(request)
        guard let role = fields["role"].flatMap(AccountRole.init(rawValue:)) else {
            throw LatchkeyError.invalidRequest("role must be one of \(AccountRole.allowedValues).")
        }
        let password = fields["password"] ?? ""
        let account = try await accounts.signUp(API.SignUp(email: fields["email"] ?? "", password: password, name: fields["name"] ?? "", role: role))
        let (token, session, _) = try await accounts.signIn(email: account.email, password: password)
        return visit.redirect(to: "/", extraCookies: [sessionCookie(token, until: session.expiresAt)])
    }

    @Sendable func signOut(_ request: Request, _ visit: PortalVisit) async throws -> Response {
        if let token = visit.sessionToken { try await accounts.signOut(token: token) }
        return visit.redirect(to: "/signin", extraCookies: [Cookie(name: PortalVisit.sessionCookie, value: "", maxAge: 0, path: "/", sameSite: .lax)])
    }

    @Sendable func compatibilityPage(_ request: Request, _ visit: PortalVisit) async throws -> Response {
        let query = request.uri.queryParameters.get("model") ?? ""
        let entries = compatibility.search(query).map { entry in
            CompatibilityRow(model: entry.model, type_label: renderer.text("type_\(entry.deviceType.rawValue)", visit), min_firmware: entry.minFirmware)
        }
        return renderer.render(CompatibilityPage(entries: entries, has_entries: !entries.isEmpty, query: query), visit)
    }

    private func sessionCookie(_ token: String, until: Date) -> Cookie {
        Cookie(name: PortalVisit.sessionCookie, value: token, maxAge: Int(sessionLifetime), path: "/", httpOnly: true, sameSite: .lax)
    }
}

/// The fields of an `application/x-www-form-urlencoded` body.
struct FormFields {
    private var values: [String: String] = [:]

    init(_ body: String) {
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map {
                String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            if let name = parts.first { values[name] = parts.count > 1 ? parts[1] : "" }
        }
    }

    init(_ request: Request) async throws {
        var request = request
        self.init(String(buffer: try await request.collectBody(upTo: 64 * 1024)))
    }

    subscript(_ name: String) -> String? { values[name].flatMap { $0.isEmpty ? nil : $0 } }
}
