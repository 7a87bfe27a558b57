import Foundation
import Hummingbird
import NIOFoundationCompat
import LatchkeyProtocol

/// `POST /accounts`, `POST /sessions`, `DELETE /sessions`.
struct AccountController {
    let accounts: AccountService

    func addPublicRoutes(to group: RouterGroup<AppRequestContext>) {
        group.post("accounts", use: signUp)
        group.post("sessions", use: signIn)
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.delete("sessions", use: signOut)
    }

    @Sendable func signUp(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<API.Account> {
        var form = try await request.decodeBody(API.SignUp.self, context: context)
        if form.language == nil { form.language = Language.negotiate(request.headers[.acceptLanguage]) }
        return EditedResponse(status: .created, response: API.Account(try await accounts.signUp(form, from: context.clientAddress)))
    }

    @Sendable func signIn(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<API.Session> {
        let form = try await request.decodeBody(API.SignIn.self, context: context)
        let (token, session, account) = try await accounts.signIn(email: form.email, password: form.password, from: context.clientAddress)
        return EditedResponse(status: .created, response: API.Session(token: token, expiresAt: session.expiresAt, account: API.Account(account)))
    }

    @Sendable func signOut(_ request: Request, context: AppRequestContext) async throws -> HTTPResponse.Status {
        if let token = context.bearerToken { try await accounts.signOut(token: token) }
        return .noContent
    }
}

/// `GET /compatibility`, `GET /keys` and `GET /openapi.json`: public facts anyone may read.
struct PublicController {
    let compatibility: CompatibilityList
    let keySet: API.KeySet

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.get("compatibility") { request, _ in
            compatibility.search(request.uri.queryParameters.get("model"))
        }
        group.get("keys") { _, _ in keySet }
        group.get("openapi.json") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "application/json; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(data: try OpenAPIDocument.data())))
        }
    }
}

/// This API as an OpenAPI 3.1 document, written by hand and kept in the repository beside the code; a test holds it
/// and the router to the same operations.
public enum OpenAPIDocument {
    public static func data() throws -> Data {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json") else {
            throw CocoaError(.fileNoSuchFile)
        }
        return try Data(contentsOf: url)
    }
}
