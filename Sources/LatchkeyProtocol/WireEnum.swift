import Foundation

/// A closed set of string values on the wire; an unknown value is refused with a message that lists the allowed ones.
public protocol WireEnum: RawRepresentable<String>, CaseIterable, Codable, Sendable, Hashable {}

extension WireEnum {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let raw = try container.decode(String.self)
        guard let value = Self(rawValue: raw) else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "'\(raw)' is not one of \(Self.allowedValues)"
            )
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    /// The accepted values, for error messages: `on_site, off_site`.
    public static var allowedValues: String {
        allCases.map(\.rawValue).joined(separator: ", ")
    }
}

/// Who an account is: the site's owner or the installer the owner works with.
public enum AccountRole: String, WireEnum {
    case owner
    case installer
}

/// What an owner lets an installer do on one site.
public enum Permission: String, WireEnum {
    case view
    case configure
    case passwordReset = "password_reset"
}

/// Where the courier of a reset stands: the owner (off-site, 24 h) or the installer (on-site, 5 min).
public enum ResetMode: String, WireEnum {
    case onSite = "on_site"
    case offSite = "off_site"
    /// The owner's own reset of a device bound to them: they ask, approve and carry it; nobody else is asked.
    case owner
}

/// The life of a reset request: `pending` → `approved` → `completed`, or it ends `declined`, `cancelled` or `expired`.
public enum ResetStatus: String, WireEnum {
    case pending
    case approved
    case completed
    case declined
    case cancelled
    case expired

    /// Open requests still block a new one for the same device.
    public var isOpen: Bool { self == .pending || self == .approved }
}

/// The families of devices Latchkey resets.
public enum DeviceType: String, WireEnum {
    case camera
    case nvr
    case doorStation = "door_station"
}

/// The tabs of the notification inbox; reset requests live under *Services*.
public enum NotificationCategory: String, WireEnum {
    case services
    case system
}

/// What happened, so a client can render a notification in its own language.
public enum NotificationKind: String, WireEnum {
    case resetRequested = "reset_requested"
    case resetApproved = "reset_approved"
    case resetDeclined = "reset_declined"
    case resetCancelled = "reset_cancelled"
    case resetExpired = "reset_expired"
    case resetCompleted = "reset_completed"
}
