import Foundation
import LatchkeyProtocol

/// Everything the service refuses, with the context a person needs to put it right.
/// The HTTP layer maps each case to a status in one place (`LatchkeyError+HTTP.swift`).
public enum LatchkeyError: Error, Equatable, Sendable {
    case invalidRequest(String)
    case unauthenticated(String)
    case forbidden(String)
    case notFound(String)
    case accountExists(email: String)
    case siteNotAuthorized(site: String, missing: Permission?)
    case deviceNotCompatible(model: String, firmware: String, minimumFirmware: String?)
    /// `id` names the open request when it is known.
    case requestAlreadyOpen(serial: String, id: UUID? = nil)
    case requestExpired(id: UUID)
    case requestNotPending(id: UUID, status: ResetStatus)
    case weakPassword(String)
    case deviceOffline(serial: String)
    case deviceAlreadyBound(serial: String)
    case verificationCodeMismatch(serial: String, attemptsLeft: Int)
    case locked(until: Date)
    case deviceKeyMismatch(serial: String)
    /// The device's certificate chain was missing, untrusted, expired, for another serial or for another key.
    case deviceNotAttested(serial: String, reason: String)
    case proximityInvalid(String)
    case presenceCodeInvalid(String)
    case grantInvalid(String)
    case receiptInvalid(String)
    /// Too many attempts: try again in `retryAfter` seconds.
    case rateLimited(retryAfter: Int)
    /// A body (JSON or form) over the limit, in bytes.
    case bodyTooLarge(limit: Int)

    /// The stable code clients branch on.
    public var code: APIErrorCode {
        switch self {
        case .invalidRequest, .bodyTooLarge: .invalidRequest
        case .unauthenticated: .unauthenticated
        case .forbidden: .forbidden
        case .notFound: .notFound
        case .accountExists: .accountExists
        case .siteNotAuthorized: .siteNotAuthorized
        case .deviceNotCompatible: .deviceNotCompatible
        case .requestAlreadyOpen: .requestAlreadyOpen
        case .requestExpired: .requestExpired
        case .requestNotPending: .requestNotPending
        case .weakPassword: .weakPassword
        case .deviceOffline: .deviceOffline
        case .deviceAlreadyBound: .deviceAlreadyBound
        case .verificationCodeMismatch: .verificationCodeMismatch
        case .locked: .locked
        case .deviceKeyMismatch: .deviceKeyMismatch
        case .deviceNotAttested: .deviceNotAttested
        case .proximityInvalid: .proximityInvalid
        case .presenceCodeInvalid: .presenceCodeInvalid
        case .grantInvalid: .grantInvalid
        case .receiptInvalid: .receiptInvalid
        case .rateLimited: .rateLimited
        }
    }

    /// What went wrong and what to do about it.
    public var message: String {
        switch self {
        case .invalidRequest(let message), .unauthenticated(let message), .forbidden(let message),
            .notFound(let message), .weakPassword(let message), .proximityInvalid(let message), .presenceCodeInvalid(let message),
            .grantInvalid(let message), .receiptInvalid(let message):
            message
        case .accountExists(let email):
            "An account with e-mail \(email) already exists: sign in instead."
        case .siteNotAuthorized(let site, let missing?):
            "You are not authorized to \(missing.activity) on site '\(site)': ask the owner for the '\(missing.rawValue)' permission."
        case .siteNotAuthorized(let site, nil):
            "Your authorization on site '\(site)' has expired: ask the owner to renew it."
        case .deviceNotCompatible(let model, let firmware, let minimum?):
            "Device \(model) runs firmware \(firmware); the password reset needs firmware \(minimum) or later. Upgrade the firmware first."
        case .deviceNotCompatible(let model, _, nil):
            "Model \(model) is not on the compatibility list, so its password cannot be reset through Latchkey."
        case .requestAlreadyOpen(let serial, let id?):
            "Device \(serial) already has an open password reset request (\(id)): wait for it to end or cancel it."
        case .requestAlreadyOpen(let serial, nil):
            "Device \(serial) already has an open password reset request: wait for it to end or cancel it."
        case .requestExpired(let id):
            "Password reset request \(id) has expired: send a new request."
        case .requestNotPending(let id, .pending):
            "Password reset request \(id) is still pending: the owner has not approved it yet."
        case .requestNotPending(let id, let status):
            "Password reset request \(id) is \(status.rawValue), so it can no longer be changed that way."
        case .deviceOffline(let serial):
            "Device \(serial) is not connected to Latchkey: power it on, connect it to the internet and try again."
        case .deviceAlreadyBound(let serial):
            "Device \(serial) is already bound to a site: its owner must unbind it first."
        case .verificationCodeMismatch(let serial, let attemptsLeft):
            "The verification code does not match the one on the label of \(serial); \(attemptsLeft) attempts left before your account may bind no device for 30 minutes."
        case .bodyTooLarge(let limit):
            "The request body is larger than this service accepts (\(limit / 1024) KB): send less."
        case .rateLimited(let retryAfter):
            "Too many attempts: try again in \(retryAfter) seconds."
        case .locked(let until):
            "Too many wrong attempts: locked until \(until.formatted(.iso8601))."
        case .deviceKeyMismatch(let serial):
            "Device \(serial) presented keys other than the ones pinned when it was bound; the connection is refused."
        case .deviceNotAttested(let serial, let reason):
            "Device \(serial) is not attested: \(reason). Only devices certified by a manufacturer this platform trusts may connect."
        }
    }
}

extension Permission {
    fileprivate var activity: String {
        switch self {
        case .view: "view devices"
        case .configure: "configure devices"
        case .passwordReset: "reset device passwords"
        }
    }
}
