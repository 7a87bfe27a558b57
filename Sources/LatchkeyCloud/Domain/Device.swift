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
    /// `host:port` of its local API on each LAN, as the device reported them.
    public var lanAddresses: [String]
    /// The channel it was last heard on; only that channel's end takes it offline.
    public var connectionId: UUID?
    /// The public address its channel came from: compared with a courier's, as a hint in the history.
    public var channelAddress: String?
    /// The node holding its channel. Read back, `lastSeenAt` is when that node was last heard from: presence is the
    /// node's, so an idle channel writes nothing (a node writes one row per heartbeat, whatever it holds).
    public var nodeId: String?

    public init(
        serial: String, model: String, deviceType: DeviceType, firmware: String, siteId: UUID?, online: Bool,
        lastSeenAt: Date? = nil, identity: DeviceIdentity? = nil, keysPinned: Bool = false, lanAddresses: [String] = [],
        connectionId: UUID? = nil, channelAddress: String? = nil, nodeId: String? = nil
    ) {
        self.nodeId = nodeId
        self.channelAddress = channelAddress
        self.serial = serial
        self.model = model
        self.deviceType = deviceType
        self.firmware = firmware
        self.siteId = siteId
        self.online = online
        self.lastSeenAt = lastSeenAt
        self.identity = identity
        self.keysPinned = keysPinned
        self.lanAddresses = lanAddresses
        self.connectionId = connectionId
    }

    /// A device whose node has not been heard from for this long is offline, even if nobody saw its channel close: a node
    /// that dies has its devices read offline on the others within this, and written offline by their next sweep.
    public static let silenceLimit: TimeInterval = 30

    public func isOnline(at now: Date) -> Bool {
        Self.isOnline(online, lastSeenAt: lastSeenAt, at: now)
    }

    public var listing: DeviceListing {
        DeviceListing(serial: serial, model: model, deviceType: deviceType, firmware: firmware, siteId: siteId, online: online,
                      lastSeenAt: lastSeenAt)
    }

    static func isOnline(_ online: Bool, lastSeenAt: Date?, at now: Date) -> Bool {
        guard online else { return false }
        guard let lastSeenAt else { return true }
        return now.timeIntervalSince(lastSeenAt) < silenceLimit
    }
}

/// A device as a list shows it: what it is, on which site, and whether it is online. Lists read only this, not the
/// device's keys, chain and channel: decoding device rows was 36 % of the CPU of a sites page on PostgreSQL (perf,
/// issue 13), and eight of their fifteen columns were ones no list shows.
public struct DeviceListing: Sendable, Equatable {
    public var serial: String
    public var model: String
    public var deviceType: DeviceType
    public var firmware: String
    public var siteId: UUID?
    public var online: Bool
    public var lastSeenAt: Date?

    public init(serial: String, model: String, deviceType: DeviceType, firmware: String, siteId: UUID?, online: Bool, lastSeenAt: Date?) {
        self.serial = serial
        self.model = model
        self.deviceType = deviceType
        self.firmware = firmware
        self.siteId = siteId
        self.online = online
        self.lastSeenAt = lastSeenAt
    }

    public func isOnline(at now: Date) -> Bool {
        Device.isOnline(online, lastSeenAt: lastSeenAt, at: now)
    }
}

/// What a device's manufacturer certified: its keys, and the chain that certifies them. No code, no hash of one.
public struct DeviceIdentity: Sendable, Equatable {
    /// Ed25519, base64url.
    public var signingKey: String
    /// X25519, base64url.
    public var agreementKey: String
    /// PEM, leaf first; nil only for devices bound before identities were anchored.
    public var certificateChain: String?

    public init(signingKey: String, agreementKey: String, certificateChain: String?) {
        self.signingKey = signingKey
        self.agreementKey = agreementKey
        self.certificateChain = certificateChain
    }

    public init(_ attested: AttestedDevice) {
        self.init(signingKey: Base64URL.encode(attested.signingKey.rawRepresentation),
                  agreementKey: Base64URL.encode(attested.agreementKey.rawRepresentation), certificateChain: attested.chainPEM)
    }

    public var signingPublicKey: Curve25519.Signing.PublicKey? {
        Base64URL.decode(signingKey).flatMap { try? Curve25519.Signing.PublicKey(rawRepresentation: $0) }
    }

    public func sameKeys(as other: DeviceIdentity) -> Bool {
        signingKey == other.signingKey && agreementKey == other.agreementKey
    }
}

/// How binding guards the label's code against guessing, on the platform's side: the account that typed wrong codes
/// is locked; the device itself slows every caller down (at most a minute).
public enum BindingRules {
    public static let maximumFailures = 5
    public static let lockout: TimeInterval = 30 * 60
}

/// One account's wrong label codes.
public struct BindingGuard: Sendable, Equatable {
    public var accountId: UUID
    public var failures: Int
    public var lockedUntil: Date?

    public init(accountId: UUID, failures: Int = 0, lockedUntil: Date? = nil) {
        self.accountId = accountId
        self.failures = failures
        self.lockedUntil = lockedUntil
    }

    public func isLocked(at now: Date) -> Bool { lockedUntil.map { now < $0 } ?? false }

    /// Counts a wrong code; the fifth locks the account's binding for `BindingRules.lockout`.
    public mutating func recordFailure(at now: Date) {
        failures += 1
        if failures >= BindingRules.maximumFailures {
            failures = 0
            lockedUntil = now + BindingRules.lockout
        }
    }

    public var attemptsLeft: Int { BindingRules.maximumFailures - failures }
}
