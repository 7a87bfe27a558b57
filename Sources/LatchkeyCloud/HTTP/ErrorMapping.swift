import Foundation
import Hummingbird
import LatchkeyProtocol
import Logging
import NIOCore

// The one place where errors become HTTP answers: status, stable code, message.

extension LatchkeyError: HTTPResponseError {
    public var status: HTTPResponse.Status {
        switch self {
        case .invalidRequest: .badRequest
        case .unauthenticated: .unauthorized
        case .forbidden, .siteNotAuthorized, .verificationCodeMismatch, .proximityInvalid, .grantInvalid, .deviceNotAttested, .presenceCodeInvalid: .forbidden
        case .notFound: .notFound
        case .accountExists, .requestAlreadyOpen, .requestNotPending, .deviceOffline, .deviceAlreadyBound, .deviceKeyMismatch:
            .conflict
        case .requestExpired: .gone
        case .deviceNotCompatible, .weakPassword, .receiptInvalid: .unprocessableContent
        case .locked: HTTPResponse.Status(code: 423, reasonPhrase: "Locked")
        case .rateLimited: .tooManyRequests
        case .bodyTooLarge: .contentTooLarge
        }
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        try ErrorAnswer(self).response
    }

    /// `Retry-After` for a refusal that says when to come back.
    var retryAfter: Int? {
        if case .rateLimited(let seconds) = self { return seconds }
        return nil
    }
}

/// An error body with its status, encoded as every error of the API is.
struct ErrorAnswer {
    var status: HTTPResponse.Status
    var body: APIErrorBody
    var retryAfter: Int?

    init(_ error: LatchkeyError) {
        self.init(status: error.status, body: APIErrorBody(code: error.code, message: error.message))
        retryAfter = error.retryAfter
    }

    var response: Response {
        get throws {
            let data = try WireCoding.makeEncoder().encode(body)
            var headers = HTTPFields()
            headers[.contentType] = "application/json; charset=utf-8"
            if let retryAfter { headers[.retryAfter] = String(retryAfter) }
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
    }

    /// Errors that are not the domain's: the router's own (unknown route, wrong method) and the unexpected.
    init(_ error: any Error, logger: Logger) {
        switch error {
        case let error as LatchkeyError:
            self.init(error)
        case let error as HTTPError where error.status == .notFound:
            self.init(status: .notFound, body: APIErrorBody(code: .notFound, message: "There is nothing at this address."))
        case let error as HTTPError where error.status == .methodNotAllowed:
            self.init(status: .methodNotAllowed, body: APIErrorBody(code: .invalidRequest, message: "This address does not take that method."))
        case is NIOTooManyBytesError:
            self.init(LatchkeyError.bodyTooLarge(limit: AppRequestContext.bodyLimit))
        case let error as HTTPError where error.status.code < 500:
            self.init(status: .badRequest, body: APIErrorBody(code: .invalidRequest, message: error.body ?? "The request is malformed."))
        case let error where DatabaseReachability.isUnreachable(error):
            logger.error("The database is unreachable", metadata: ["error": "\(String(reflecting: error))"])
            self.init(status: .serviceUnavailable, body: APIErrorBody(
                code: .internalError, message: "The service cannot reach its database just now; try again in a minute."))
            retryAfter = 30
        default:
            logger.error("Unexpected error", metadata: ["error": "\(String(reflecting: error))"])
            self.init(status: .internalServerError, body: APIErrorBody(code: .internalError, message: "Something went wrong on our side; try again."))
        }
    }

    init(status: HTTPResponse.Status, body: APIErrorBody) {
        self.status = status
        self.body = body
    }
}

/// Turns every error below it into the API's error body, so no answer leaves without a stable code — or, where
/// `page` answers one, into a page for a person with the same status. Our own failures are logged here, once.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let page: @Sendable (Request, ErrorAnswer, LatchkeyError?) -> Response?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let answer = ErrorAnswer(error, logger: context.logger)
            if let page = page(request, answer, error as? LatchkeyError) { return page }
            return try answer.response
        }
    }
}
