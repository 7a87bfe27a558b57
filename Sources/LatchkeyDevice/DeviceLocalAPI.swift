import Foundation
import Hummingbird
import LatchkeyProtocol

/// The device's HTTP API on its LAN: info, activation, challenge, password reset, login.
struct DeviceLocalAPI {
    let device: EmulatedDevice

    func buildRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: DeviceErrorMiddleware())
        let local = router.group(RouterPath(LocalAPI.pathPrefix))
        local.get("info") { _, _ in await JSON(device.info) }
        local.post("activate") { request, context in
            let form = try await decode(LocalAPI.Activate.self, request, context)
            try await device.activate(password: form.password)
            return JSON(await device.info)
        }
        local.post("challenge") { _, _ in JSON(try await device.challenge()) }
        local.post("password-reset") { request, context in
            let form = try await decode(LocalAPI.ApplyReset.self, request, context)
            return JSON(try await device.applyReset(grant: form.grant, sealedPassword: form.sealedPassword))
        }
        local.post("login") { request, context in
            let form = try await decode(LocalAPI.Login.self, request, context)
            return JSON(LocalAPI.Session(session: try await device.login(username: form.username, password: form.password)))
        }
        return router
    }

    private func decode<T: Decodable>(_ type: T.Type, _ request: Request, _ context: BasicRequestContext) async throws -> T {
        let buffer = try await request.body.collect(upTo: 16 * 1024)
        do {
            return try WireCoding.makeDecoder().decode(T.self, from: Data(buffer: buffer))
        } catch let error as DecodingError {
            throw DeviceError.invalidRequest(WireCoding.describe(error))
        }
    }
}

/// An `Encodable` answered as Latchkey's JSON.
struct JSON<Value: Encodable & Sendable>: ResponseGenerator {
    let value: Value
    init(_ value: Value) { self.value = value }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(data: try WireCoding.makeEncoder().encode(value))))
    }
}

/// Every refusal as `{"error": {"code", "message"}}` with its status, like the platform's.
struct DeviceErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let (status, body): (Int, APIErrorBody) =
                switch error {
                case let error as DeviceError: (error.status, APIErrorBody(code: error.code, message: error.message))
                case let error as HTTPError where error.status == .notFound:
                    (404, APIErrorBody(code: .notFound, message: "There is nothing at this address."))
                case let error as HTTPError: (400, APIErrorBody(code: .invalidRequest, message: error.body ?? "Bad request."))
                default: (500, APIErrorBody(code: .internalError, message: "The device failed: \(error)"))
                }
            var headers = HTTPFields()
            headers[.contentType] = "application/json; charset=utf-8"
            return Response(status: .init(code: status), headers: headers,
                            body: .init(byteBuffer: ByteBuffer(data: try WireCoding.makeEncoder().encode(body))))
        }
    }
}
