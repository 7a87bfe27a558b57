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

    func addRoutes(to router: Router<AppRequestContext>) {
        let portal = router.group().add(middleware: PortalSessionMiddleware(accounts: accounts, renderer: renderer))
        let forms = portal.group().add(middleware: CSRFMiddleware(renderer: renderer))
        let member = portal.group().add(middleware: SignedInMiddleware())
        let memberForms = member.group().add(middleware: CSRFMiddleware(renderer: renderer))

        portal.get("/") { _, context in
            let visit = try context.visit()
            guard let account = visit.account else { return visit.redirect(to: "/signin") }
            return visit.redirect(to: account.role == .owner ? "/notifications" : "/sites")
        }
        portal.get("signin") { request, context in
            renderer.render(SignInPage(next: SignInReturn.path(request.uri.queryParameters.get("next"))), try context.visit())
        }
        portal.get("signup") { _, context in renderer.render(SignUpPage(), try context.visit()) }
        portal.get("compatibility") { request, context in try await compatibilityPage(request, try context.visit()) }
        // The browser's EventSource sends the session cookie, not a bearer token.
        portal.get("events") { request, context in try await events.stream(request, context: context) }
        forms.post("signin") { request, context in try await signIn(request, try context.visit(), from: context.clientAddress) }
        forms.post("signup") { request, context in try await signUp(request, try context.visit(), from: context.clientAddress) }
        forms.post("signout") { request, context in try await signOut(request, try context.visit()) }

        let pages = PortalPages(controller: self)
        member.get("sites") { request, context in try await pages.sites(request, try context.visit()) }
        member.get("sites/:id") { request, context in try await pages.site(request, try context.visit(), context) }
        member.get("devices/:serial/history.csv") { _, context in try await pages.historyExport(try context.visit(), context, .csv) }
        member.get("devices/:serial/history.json") { _, context in try await pages.historyExport(try context.visit(), context, .json) }
        member.get("devices/:serial/history") { request, context in try await pages.history(request, try context.visit(), context) }
        member.get("reset") { request, context in try await pages.resetForm(request, try context.visit()) }
        member.get("requests") { request, context in try await pages.requests(request, try context.visit()) }
        member.get("requests/:id") { request, context in try await pages.request(request, try context.visit(), context) }
        member.get("notifications") { request, context in try await pages.notifications(request, try context.visit()) }
        member.get("notifications/:id") { request, context in try await pages.notification(request, try context.visit(), context) }
        memberForms.post("notifications/:id/open") { _, context in try await pages.openNotification(try context.visit(), context) }
        memberForms.post("sites") { request, context in try await pages.createSite(request, try context.visit()) }
        memberForms.post("sites/:id/devices") { request, context in try await pages.bind(request, try context.visit(), context) }
        memberForms.post("sites/:id/authorizations") { request, context in try await pages.authorize(request, try context.visit(), context) }
        memberForms.post("sites/:id/authorizations/:installerId/revoke") { request, context in
            try await pages.revoke(request, try context.visit(), context)
        }
        memberForms.post("reset") { request, context in try await pages.sendReset(request, try context.visit()) }
        memberForms.post("requests/:id/cancel") { request, context in try await pages.end(request, try context.visit(), context, action: .cancel) }
        memberForms.post("requests/:id/decline") { request, context in try await pages.end(request, try context.visit(), context, action: .decline) }
        memberForms.post("requests/:id/approve") { request, context in try await pages.approve(request, try context.visit(), context) }
        memberForms.post("requests/:id/presence") { request, context in try await pages.deliver(request, try context.visit(), context) }
    }

    // MARK: - Public pages

    func signIn(_ request: Request, _ visit: PortalVisit, from address: String?) async throws -> Response {
        let fields = try await FormFields(request)
        let (token, session, _) = try await accounts.signIn(email: fields["email"] ?? "", password: fields["password"] ?? "", from: address,
                                                            language: visit.language)
        return visit.redirect(to: SignInReturn.path(fields["next"]) ?? "/", extraCookies: [sessionCookie(token, until: session.expiresAt)])
    }

    func signUp(_ request: Request, _ visit: PortalVisit, from address: String?) async throws -> Response {
        let fields = try await FormFields(request)
        guard let role = fields["role"].flatMap(AccountRole.init(rawValue:)) else {
            throw LatchkeyError.invalidRequest("role must be one of \(AccountRole.allowedValues).")
        }
        let password = fields["password"] ?? ""
        let account = try await accounts.signUp(API.SignUp(email: fields["email"] ?? "", password: password, name: fields["name"] ?? "", role: role,
                                                             language: visit.language),
                                                from: address)
        let (token, session, _) = try await accounts.signIn(email: account.email, password: password, from: address)
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
        self.init(String(buffer: try await request.collectBody(upTo: AppRequestContext.bodyLimit)))
    }

    subscript(_ name: String) -> String? { values[name].flatMap { $0.isEmpty ? nil : $0 } }
}
