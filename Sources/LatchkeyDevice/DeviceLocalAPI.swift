import Foundation
import Hummingbird
import LatchkeyProtocol
import NIOCore

/// The device's HTTP API on its LAN: info, activation, challenge, password reset, login.
///
/// Only requests a program on the LAN makes on purpose are answered: `Host` must be one of the device's own
/// addresses (no DNS rebinding), a browser's `Origin` must be the device's own (no page elsewhere speaking for the
/// person who opened it), and bodies are JSON (a cross-site form cannot send that without a preflight the device
/// never grants).
struct DeviceLocalAPI {
    let device: EmulatedDevice
    let ownHosts: Set<String>
    let port: @Sendable () async -> Int

    func buildRouter() -> Router<DeviceRequestContext> {
        let router = Router(context: DeviceRequestContext.self)
        router.add(middleware: DeviceErrorMiddleware())
        router.add(middleware: LocalRequestGuard(ownHosts: ownHosts, port: port))
        DeviceLocalPage(device: device).addRoutes(to: router)
        let local = router.group(RouterPath(LocalAPI.pathPrefix))
        local.get("info") { _, _ in await JSON(device.info) }
        local.post("activate") { request, context in
            let form = try await decode(LocalAPI.Activate.self, request, context)
            try await device.activate(password: form.password)
            return JSON(await device.info)
        }
        local.post("challenge") { _, context in JSON(try await device.challenge(from: context.source)) }
        local.post("presence-code") { _, _ in JSON(try await device.presenceCode()) }
        local.post("password-reset") { request, context in
            let form = try await decode(LocalAPI.ApplyReset.self, request, context)
            return JSON(try await device.applyReset(grant: form.grant, sealedPassword: form.sealedPassword))
        }
        local.post("login") { request, context in
            let form = try await decode(LocalAPI.Login.self, request, context)
            return JSON(LocalAPI.Session(session: try await device.login(username: form.username, password: form.password,
                                                                         from: context.source)))
        }
        return router
    }

    private func decode<T: Decodable>(_ type: T.Type, _ request: Request, _ context: DeviceRequestContext) async throws -> T {
        let buffer = try await request.body.collect(upTo: 16 * 1024)
        do {
            return try WireCoding.makeDecoder().decode(T.self, from: Data(buffer: buffer))
        } catch let error as DecodingError {
            throw DeviceError.invalidRequest(WireCoding.describe(error))
        }
    }
}

/// A request on the device's LAN, with the address it came from: challenges are counted per source.
struct DeviceRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    var source: String { remoteAddress?.ipAddress ?? "unknown" }
}

/// Refuses what a web page, a rebound DNS name or a cross-site form could send.
struct LocalRequestGuard: RouterMiddleware {
    typealias Context = DeviceRequestContext
    let ownHosts: Set<String>
    let port: @Sendable () async -> Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let port = await port()
        guard let host = request.head.authority, isOwn(host, port: port) else {
            throw DeviceError.foreignRequest("This device answers only to its own address, not to '\(request.head.authority ?? "")'.")
        }
        if let origin = request.headers[.origin] {
            guard let url = URL(string: origin), url.scheme == "http", let originHost = url.host,
                isOwn(url.port.map { "\(originHost):\($0)" } ?? originHost, port: port)
            else { throw DeviceError.foreignRequest("Requests from pages other than the device's own are refused.") }
        }
        if request.method == .post {
            if request.uri.path.hasPrefix(LocalAPI.pathPrefix) {
                let type = request.headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
                guard type == "application/json" else { throw DeviceError.unsupportedMediaType }
            } else if request.headers[.origin] == nil {
                // The device's own page posts forms: a browser always names their origin, checked above.
                throw DeviceError.foreignRequest("The device's page takes forms from itself only.")
            }
        }
        return try await next(request, context)
    }

    /// `host` or `host:port` naming one of the device's addresses and its port (80 may be left out).
    func isOwn(_ authority: String, port: Int) -> Bool {
        var name = authority
        var given: Int? = nil
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            name = String(authority[..<colon])
            guard let number = Int(authority[authority.index(after: colon)...]) else { return false }
            given = number
        }
        if name.hasPrefix("["), name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        return ownHosts.contains(name) && (given ?? 80) == port
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
            if case .busy(let retryAfter) = error as? DeviceError { headers[.retryAfter] = String(retryAfter) }
            return Response(status: .init(code: status), headers: headers,
                            body: .init(byteBuffer: ByteBuffer(data: try WireCoding.makeEncoder().encode(body))))
        }
    }
}
