import Crypto
import Foundation
import LatchkeyProtocol

/// A device known to the platform: it connected over its channel (or was put in place by an operator), and reaches a
/// site when its owner binds it with the code on its label.
public struct Device: Sendable, Equatable {
    public var serial: String
    public var model: String
    public var deviceType: DeviceType
    public var firmware: String
    public var siteId: UUID?
    /// Whether its channel is open; read `isOnline(at:)`, which also distrusts a channel silent for too long.
    public var online: Bool
    public var lastSeenAt: Date?
    public var identity: DeviceIdentity?
    /// After binding the keys are pinned: a connection with other keys for this serial is refused.
    public var keysPinned: Bool
    public var bindFailures: Int
    public var bindLockedUntil: Date?

    public init(
        serial: String, model: String, deviceType: DeviceType, firmware: String, siteId: UUID?, online: Bool,
        lastSeenAt: Date? = nil, identity: DeviceIdentity? = nil, keysPinned: Bool = false, bindFailures: Int = 0,
        bindLockedUntil: Date? = nil
    ) {
        self.serial = serial
        self.model = model
        self.deviceType = deviceType
        self.firmware = firmware
        self.siteId = siteId
        self.online = online
        self.lastSeenAt = lastSeenAt
        self.identity = identity
        self.keysPinned = keysPinned
        self.bindFailures = bindFailures
        self.bindLockedUntil = bindLockedUntil
    }

    /// A channel that has not been heard from for this long is offline, even if nobody saw it close.
    public static let silenceLimit: TimeInterval = 30

    public func isOnline(at now: Date) -> Bool {
        guard online else { return false }
        guard let lastSeenAt else { return true }
        return now.timeIntervalSince(lastSeenAt) < Self.silenceLimit
    }
}

/// What a device proved about itself on its channel: its keys and the hash of its label's code.
public struct DeviceIdentity: Sendable, Equatable {
    /// Ed25519, base64url.
    public var signingKey: String
    /// X25519, base64url.
    public var agreementKey: String
    public var verificationCodeSalt: String
    public var verificationCodeHash: String

    public init(signingKey: String, agreementKey: String, verificationCodeSalt: String, verificationCodeHash: String) {
        self.signingKey = signingKey
        self.agreementKey = agreementKey
        self.verificationCodeSalt = verificationCodeSalt
        self.verificationCodeHash = verificationCodeHash
    }

    public var signingPublicKey: Curve25519.Signing.PublicKey? {
        Base64URL.decode(signingKey).flatMap { try? Curve25519.Signing.PublicKey(rawRepresentation: $0) }
    }

    public func sameKeys(as other: DeviceIdentity) -> Bool {
        signingKey == other.signingKey && agreementKey == other.agreementKey
    }

    public func matches(verificationCode code: String) -> Bool {
        VerificationCode.hash(code, salt: verificationCodeSalt) == verificationCodeHash
    }
}

/// How binding guards the label's code against guessing.
public enum BindingRules {
    public static let maximumFailures = 5
    public static let lockout: TimeInterval = 30 * 60
}
