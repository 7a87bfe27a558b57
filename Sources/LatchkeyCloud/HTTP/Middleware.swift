import Foundation
import Hummingbird
import Metrics

/// Resolves `Authorization: Bearer <token>` to the account, or refuses the request.
struct BearerAuthMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let accounts: AccountService

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else {
            throw LatchkeyError.unauthenticated("Sign in first: send 'Authorization: Bearer <token>'.")
        }
        let token = String(header.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)
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
