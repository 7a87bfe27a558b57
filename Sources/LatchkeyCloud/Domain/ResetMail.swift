import Foundation
import LatchkeyProtocol

/// What an e-mail about a reset tells its reader: the facts, not the markup. Queued as it is and rendered in the
/// reader's language when sent, so the queue never holds a half-written message.
public struct ResetMail: Codable, Sendable, Equatable {
    /// The steps people are mailed about: a new request (to the owner) and each way a request ends (to both).
    public enum Event: String, Codable, Sendable, CaseIterable {
        case requested, completed, declined, cancelled, expired
    }

    public var event: Event
    public var requestId: UUID
    public var recipientName: String
    /// The owner and the installer are told an outcome in different words.
    public var toOwner: Bool
    public var deviceModel: String
    public var deviceSerial: String
    public var siteName: String
    public var installerName: String
    public var installerEmail: String
    public var mode: ResetMode
    public var expiresAt: Date
    public var cancelReason: CancelReason?
}

/// Why an owner's action ended an installer's open request.
public enum CancelReason: String, Codable, Sendable {
    case authorizationRevoked = "authorization revoked"
    case deviceUnbound = "device unbound"
}

/// One e-mail in the queue: to whom, in which language, and how many times it was tried.
public struct QueuedMail: Sendable, Equatable {
    public var id: UUID
    public var recipient: String
    public var language: Language
    public var mail: ResetMail
    public var queuedAt: Date
    public var attempts: Int

    public init(id: UUID = UUID(), recipient: String, language: Language, mail: ResetMail, queuedAt: Date, attempts: Int = 0) {
        self.id = id
        self.recipient = recipient
        self.language = language
        self.mail = mail
        self.queuedAt = queuedAt
        self.attempts = attempts
    }

    /// The mail a notice warrants, to the notice's reader in their language, if any: approvals stay in the inbox (the
    /// next step follows at once).
    static func about(_ notice: AccountNotification, _ parties: ResetParties, cancelReason: CancelReason?) -> QueuedMail? {
        let event: ResetMail.Event
        switch notice.kind {
        case .resetRequested: event = .requested
        case .resetCompleted: event = .completed
        case .resetDeclined: event = .declined
        case .resetCancelled: event = .cancelled
        case .resetExpired: event = .expired
        default: return nil
        }
        let toOwner = notice.accountId == parties.owner.id
        let reader = toOwner ? parties.owner : parties.installer
        let mail = ResetMail(
            event: event, requestId: parties.request.id, recipientName: reader.name, toOwner: toOwner, deviceModel: parties.device.model,
            deviceSerial: parties.device.serial, siteName: parties.site.name, installerName: parties.installer.name,
            installerEmail: parties.installer.email, mode: parties.request.mode, expiresAt: parties.request.expiresAt,
            cancelReason: event == .cancelled ? cancelReason : nil)
        return QueuedMail(recipient: reader.email, language: reader.language, mail: mail, queuedAt: notice.createdAt)
    }
}

/// When a mail that could not be sent is tried again: 1, 2, 4 … minutes, at most an hour apart, for three days.
public struct MailRetryPolicy: Sendable {
    public var first: TimeInterval = 60
    public var longest: TimeInterval = 60 * 60
    public var giveUpAfter: TimeInterval = 3 * 24 * 60 * 60

    public init() {}

    /// The wait after the `attempts`-th failed attempt.
    public func delay(afterAttempts attempts: Int) -> TimeInterval {
        min(longest, first * pow(2, Double(max(0, attempts - 1))))
    }
}
