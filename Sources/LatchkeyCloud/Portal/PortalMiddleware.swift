import Foundation
import Hummingbird
import LatchkeyProtocol

/// Every portal route: who is signed in (the session cookie), in which language, with which CSRF token — on the
/// context as a `PortalVisit` — and a failure shown as a page in the reader's language with the real status.
struct PortalSessionMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let accounts: AccountService
    let renderer: PortalRenderer

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let cookies = PortalCookies(request)
        let token = cookies[PortalVisit.sessionCookie]
        // A stale cookie simply means nobody; a database that does not answer is not "nobody".
        var account: Account?
        if let token {
            do { account = try await accounts.authenticate(token: token) } catch LatchkeyError.unauthenticated {}
        }
        let visit = PortalVisit(request: request, cookies: cookies, account: account, sessionToken: account == nil ? nil : token)
        var context = context
        context.portalVisit = visit
        context.account = account
        do {
            return try await next(request, context)
        } catch {
            return renderer.error(ErrorAnswer(error, logger: context.logger), error as? LatchkeyError, visit, back: Self.back(request))
        }
    }

    /// Where an error page's "back" leads: the portal page a form came from, else home.
    static func back(_ request: Request) -> String {
        guard request.method == .post, let referer = request.headers[.referer].flatMap(URL.init(string:)),
            referer.host == nil || referer.host == request.head.authority?.split(separator: ":").first.map(String.init)
        else { return "/" }
        return referer.path.isEmpty ? "/" : referer.path
    }
}

/// Pages behind sign-in send strangers to it.
struct SignedInMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let visit = try context.visit()
        guard visit.account != nil else {
            // A link followed while signed out (an e-mail's, say) leads back to its page after signing in.
            guard request.method == .get, let back = SignInReturn.path(request.uri.description) else { return visit.redirect(to: "/signin") }
            let unreserved = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
            return visit.redirect(to: "/signin?next=" + (back.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""))
        }
        return try await next(request, context)
    }
}

/// Where sign-in sends its visitor back to: a path on this portal only, never another site (`//host`, `/\host`, a
/// scheme), so the link cannot be used to send people elsewhere.
enum SignInReturn {
    static func path(_ candidate: String?) -> String? {
        guard let candidate, candidate.hasPrefix("/"), !candidate.hasPrefix("//"), !candidate.hasPrefix("/\\"),
            candidate.count <= 512, !candidate.contains(where: { $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 } ?? false }),
            candidate != "/signin", !candidate.hasPrefix("/signin?")
        else { return nil }
        return candidate
    }
}

/// Every form carries the double-submit CSRF token of its cookie; a form without it changes nothing.
struct CSRFMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let renderer: PortalRenderer

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let visit = try context.visit()
        var request = request
        let body = String(buffer: try await request.collectBody(upTo: AppRequestContext.bodyLimit))
        guard let sent = FormFields(body)["csrf"], let expected = PortalCookies(request)[PortalVisit.csrfCookie], sent == expected else {
            return renderer.render(
                ErrorPage(code: "csrf", message: renderer.text("error_csrf", visit), back: PortalSessionMiddleware.back(request),
                          open_request: nil), visit, status: .forbidden)
        }
        request.body = .init(buffer: ByteBuffer(string: body))
        return try await next(request, context)
    }
}

extension AppRequestContext {
    /// The portal visit the session middleware put here; its absence is a wiring mistake of ours.
    func visit() throws -> PortalVisit {
        guard let portalVisit else { throw PortalWiringError() }
        return portalVisit
    }
}

/// A portal route reached without `PortalSessionMiddleware`: our failure, a 500.
struct PortalWiringError: Error {}
