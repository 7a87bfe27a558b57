import Foundation
import LatchkeyProtocol

/// An entry in one account's inbox, written in the same transaction as the change it tells about.
public struct AccountNotification: Sendable, Equatable {
    public var id: UUID
    public var accountId: UUID
    public var category: NotificationCategory
    public var kind: NotificationKind
    public var title: String
    public var body: String
    public var requestId: UUID?
    public var createdAt: Date
    public var read: Bool

    public init(
        id: UUID? = nil, accountId: UUID, category: NotificationCategory, kind: NotificationKind, title: String,
        body: String, requestId: UUID?, createdAt: Date, read: Bool = false
    ) {
        self.id = id ?? .timeOrdered(at: createdAt)
        self.accountId = accountId
        self.category = category
        self.kind = kind
        self.title = title
        self.body = body
        self.requestId = requestId
        self.createdAt = createdAt
        self.read = read
    }
}

/// What an audit line records: one case per kind of event, so the log, its readers and its exports agree on them.
public enum AuditAction: String, WireEnum {
    case accountCreated = "account.created"
    case siteCreated = "site.created"
    case authorizationGranted = "authorization.granted"
    case authorizationRevoked = "authorization.revoked"
    case deviceConnected = "device.connected"
    case deviceBound = "device.bound"
    case deviceUnbound = "device.unbound"
    case resetRequested = "reset.requested"
    case resetApproved = "reset.approved"
    case resetDeclined = "reset.declined"
    case resetCancelled = "reset.cancelled"
    case resetGranted = "reset.granted"
    case resetDelivered = "reset.delivered"
    case resetCompleted = "reset.completed"
    case resetExpired = "reset.expired"
}

/// An audit line as a person reads it: with the actor's name.
public struct AuditLine: Sendable, Equatable {
    public var entry: AuditEntry
    public var actorName: String?
}

/// One line of the append-only audit log.
public struct AuditEntry: Sendable, Equatable {
    /// The position in the log, given by the database when the line is appended: lines of one instant keep their order.
    public var sequence: Int?
    public var at: Date
    public var actorId: UUID?
    public var siteId: UUID?
    public var deviceSerial: String?
    public var requestId: UUID?
    public var action: AuditAction
    public var outcome: String
    public var detail: String?

    public init(
        sequence: Int? = nil, at: Date, actorId: UUID?, siteId: UUID?, deviceSerial: String?, requestId: UUID?,
        action: AuditAction, outcome: String, detail: String? = nil
    ) {
        self.sequence = sequence
        self.at = at
        self.actorId = actorId
        self.siteId = siteId
        self.deviceSerial = deviceSerial
        self.requestId = requestId
        self.action = action
        self.outcome = outcome
        self.detail = detail
    }
}

/// Hides most of an owner's e-mail from the installer while letting the owner recognise it: `lm...@gmail.com`.
public enum EmailMask {
    public static func mask(_ email: String) -> String {
        guard let at = email.lastIndex(of: "@") else { return "..." }
        let local = email[..<at]
        return "\(local.prefix(local.count > 2 ? 2 : 1))...\(email[at...])"
    }
}
