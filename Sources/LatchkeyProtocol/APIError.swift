import Foundation

/// The stable error codes of the HTTP API: clients branch on these, never on messages.
public enum APIErrorCode: String, Codable, Sendable, CaseIterable {
    case invalidRequest = "invalid_request"
    case unauthenticated
    case forbidden
    case notFound = "not_found"
    case accountExists = "account_exists"
    case siteNotAuthorized = "site_not_authorized"
    case deviceNotCompatible = "device_not_compatible"
    case deviceOffline = "device_offline"
    case deviceAlreadyBound = "device_already_bound"
    case requestAlreadyOpen = "request_already_open"
    case requestExpired = "request_expired"
    case requestNotPending = "request_not_pending"
    case proximityInvalid = "proximity_invalid"
    case grantInvalid = "grant_invalid"
    case receiptInvalid = "receipt_invalid"
    case weakPassword = "weak_password"
    case verificationCodeMismatch = "verification_code_mismatch"
    case deviceKeyMismatch = "device_key_mismatch"
    case deviceNotAttested = "device_not_attested"
    case presenceCodeInvalid = "presence_code_invalid"
    case locked
    case rateLimited = "rate_limited"
    case internalError = "internal_error"
}

/// The body of every error answer: `{"error": {"code": "...", "message": "..."}}`.
public struct APIErrorBody: Codable, Sendable, Equatable {
    public struct Detail: Codable, Sendable, Equatable {
        public var code: APIErrorCode
        public var message: String

        public init(code: APIErrorCode, message: String) {
            self.code = code
            self.message = message
        }
    }

    public var error: Detail

    public init(code: APIErrorCode, message: String) {
        self.error = Detail(code: code, message: message)
    }
}
