import HTTPTypes
import Foundation
import Hummingbird
import Metrics

/// Resolves `Authorization: Bearer <token>` to the account, or refuses the request.
struct BearerAuthMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let accounts: AccountService

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // The scheme compared without copying the header in lower case, the token without Foundation's character sets:
        // every signed-in request passes here.
        guard let header = request.headers[.authorization], header.utf8.count > 7,
            header.utf8.prefix(7).elementsEqual("bearer ".utf8, by: { $0 == $1 || ($1 != UInt8(ascii: " ") && $0 | 0x20 == $1) })
        else {
            throw LatchkeyError.unauthenticated("Sign in first: send 'Authorization: Bearer <token>'.")
        }
        let token = String(header.dropFirst("bearer ".count).withoutSurroundingSpaces)
        var context = context
        context.account = try await accounts.authenticate(token: token)
        context.bearerToken = token
        return try await next(request, context)
    }
}

/// Counts answers by route and status for `/metrics`, through swift-metrics on the app's own factory.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let factory: any MetricsFactory

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response = try await next(request, context)
        Counter(
            label: "latchkey_http_requests_total",
            dimensions: [
                // The route pattern, not the path: ids would make every request its own series.
                ("route", context.endpointPath ?? "unmatched"),
                ("method", request.method.rawValue),
                ("status", String(response.status.code)),
            ],
            factory: factory
        ).increment()
        return response
    }
}

/// Believes `X-Forwarded-For` only when the connection comes from a proxy the operator named (`--trusted-proxy`):
/// anyone else could write any address there.
struct ClientAddressMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let trustedProxies: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.clientAddress = Self.clientAddress(peer: context.peerAddress, forwardedFor: request.headers[.xForwardedFor],
                                                   trustedProxies: trustedProxies)
        return try await next(request, context)
    }

    /// The last address the trusted proxies did not add themselves: the right-most untrusted hop of the header.
    static func clientAddress(peer: String?, forwardedFor: String?, trustedProxies: Set<String>) -> String? {
        guard let peer, trustedProxies.contains(peer), let forwardedFor else { return peer }
        let hops = forwardedFor.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return hops.last(where: { !trustedProxies.contains($0) }) ?? hops.first ?? peer
    }
}

/// Marks every cookie `Secure` when browsers reach the portal over HTTPS, so a session never travels in clear.
struct SecureCookiesMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        let cookies = response.headers[values: .setCookie]
        guard !cookies.isEmpty else { return response }
        response.headers[values: .setCookie] = cookies.map { $0.lowercased().contains("; secure") ? $0 : $0 + "; Secure" }
        return response
    }
}

/// The portal's scripts and styles under `/static/`; every other path goes by untouched (the file middleware would
/// refuse an id with two dots in it as a malformed request), and a bad file path is simply not found.
struct StaticFilesMiddleware<Context: RequestContext>: RouterMiddleware {
    let files: FileMiddleware<Context, LocalFileSystem>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.uri.path.hasPrefix("/static/") else { return try await next(request, context) }
        do {
            return try await files.handle(request, context: context, next: next)
        } catch let error as HTTPError where error.status == .badRequest {
            throw LatchkeyError.notFound("There is nothing at this address.")
        }
    }
}

extension HTTPField.Name {
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
}
