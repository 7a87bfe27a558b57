import Foundation
import LatchkeyProtocol

/// How long each kind of request stays open.
public struct ResetWindows: Sendable, Equatable {
    public var onSite: TimeInterval
    public var offSite: TimeInterval
    /// The owner's own reset: long enough to walk to the device's LAN.
    public var owner: TimeInterval = 60 * 60

    public static let standard = ResetWindows(onSite: 5 * 60, offSite: 24 * 60 * 60)

    public init(onSite: TimeInterval, offSite: TimeInterval) {
        self.onSite = onSite
        self.offSite = offSite
    }

    public func window(for mode: ResetMode) -> TimeInterval {
        switch mode {
        case .onSite: onSite
        case .offSite: offSite
        case .owner: owner
        }
    }
}

/// A request to reset one device's admin password: an installer's, waiting on the owner, or the owner's own (then
/// `installerId` is the owner: the one who asked).
///
/// The transitions live here, free of HTTP and storage, so that the rules — who may do what, in which state,
/// before which time — are tested directly.
public struct PasswordResetRequest: Sendable, Equatable {
    // What the request is about, and its window, are fixed when it opens: a transition changes only what follows, and
    // only that is written again (`ResetRequestRepository.update`).
    public let id: UUID
    public let deviceSerial: String
    public let siteId: UUID
    public let ownerId: UUID
    public let installerId: UUID
    public let mode: ResetMode
    public let createdAt: Date
    public let expiresAt: Date
    /// The status as last written; read `status(at:)` for the truth, which also knows about expiry.
    public var storedStatus: ResetStatus
    public var updatedAt: Date
    /// The new password sealed to the device's key (HPKE). The platform cannot open it.
    public var sealedPassword: String?
    public var completedAt: Date?

    public init(
        id: UUID, deviceSerial: String, siteId: UUID, ownerId: UUID, installerId: UUID, mode: ResetMode,
        storedStatus: ResetStatus, createdAt: Date, expiresAt: Date, updatedAt: Date, sealedPassword: String?,
        completedAt: Date? = nil
    ) {
        self.id = id
        self.deviceSerial = deviceSerial
        self.siteId = siteId
        self.ownerId = ownerId
        self.installerId = installerId
        self.mode = mode
        self.storedStatus = storedStatus
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.updatedAt = updatedAt
        self.sealedPassword = sealedPassword
        self.completedAt = completedAt
    }

    /// A new pending request, open for the mode's window.
    public static func open(device: Device, site: Site, installerId: UUID, mode: ResetMode, windows: ResetWindows, at now: Date)
        -> PasswordResetRequest
    {
        PasswordResetRequest(
            id: .timeOrdered(at: now), deviceSerial: device.serial, siteId: site.id, ownerId: site.ownerId, installerId: installerId,
            mode: mode, storedStatus: .pending, createdAt: now, expiresAt: now + windows.window(for: mode), updatedAt: now,
            sealedPassword: nil
        )
    }

    /// Expiry holds on every read: an open request past its window is expired whether or not it was written so.
    public func status(at now: Date) -> ResetStatus {
        storedStatus.isOpen && now >= expiresAt ? .expired : storedStatus
    }

    /// Open and past its window, so it must be written as expired before anything else happens to it.
    public func isDue(at now: Date) -> Bool {
        storedStatus.isOpen && now >= expiresAt
    }

    /// The owner's client and the installer's client: which one carries the reset to the device's LAN.
    public var courierId: UUID {
        mode == .onSite ? installerId : ownerId
    }

    public func involves(_ accountId: UUID) -> Bool {
        accountId == ownerId || accountId == installerId
    }

    // MARK: - Transitions

    /// The owner agrees and hands over the new password, sealed to the device.
    public mutating func approve(by accountId: UUID, sealedPassword: String, at now: Date) throws(LatchkeyError) {
        guard accountId == ownerId else { throw .forbidden("Only the site owner can approve a password reset.") }
        try requireStatus(.pending, at: now)
        try SealedPasswordFormat.check(sealedPassword)
        self.sealedPassword = sealedPassword
        storedStatus = .approved
        updatedAt = now
    }

    /// The owner refuses; also withdraws an approval not yet carried to the device.
    public mutating func decline(by accountId: UUID, at now: Date) throws(LatchkeyError) {
        guard accountId == ownerId else { throw .forbidden("Only the site owner can decline a password reset.") }
        try requireOpen(at: now)
        end(as: .declined, at: now)
    }

    /// The requesting installer withdraws the request.
    public mutating func cancel(by accountId: UUID, at now: Date) throws(LatchkeyError) {
        guard accountId == installerId else {
            throw .forbidden("Only the installer who sent a password reset request can cancel it.")
        }
        try requireOpen(at: now)
        end(as: .cancelled, at: now)
    }

    /// The owner took away what the request stood on (the installer's authorization, or the device itself).
    public mutating func cancelByOwnerAction(at now: Date) throws(LatchkeyError) {
        try requireOpen(at: now)
        end(as: .cancelled, at: now)
    }

    /// The courier, standing at the device, asks for the platform's grant; only the mode's courier may.
    public func checkGrant(to accountId: UUID, at now: Date) throws(LatchkeyError) {
        guard involves(accountId) else { throw .notFound("No password reset request with id \(id) is visible to you.") }
        guard accountId == courierId else {
            throw .forbidden(
                mode == .onSite
                    ? "An on-site reset is carried to the device by the requesting installer's app, on the device's LAN."
                    : "An off-site reset is carried to the device by the owner's app, on the device's LAN.")
        }
        try requireStatus(.approved, at: now)
    }

    /// The device applied the new password. Its signed receipt completes the request even if the window closed in
    /// between: the device, which checked the grant's own expiry, is the authority on what it did.
    public mutating func complete(at now: Date) throws(LatchkeyError) {
        guard storedStatus == .approved || storedStatus == .expired else {
            throw .requestNotPending(id: id, status: storedStatus)
        }
        storedStatus = .completed
        sealedPassword = nil
        completedAt = now
        updatedAt = now
    }

    /// Writes down what `status(at:)` already says.
    public mutating func expire(at now: Date) {
        guard isDue(at: now) else { return }
        storedStatus = .expired
        sealedPassword = nil
        updatedAt = now
    }

    private mutating func end(as status: ResetStatus, at now: Date) {
        storedStatus = status
        sealedPassword = nil
        updatedAt = now
    }

    private func requireStatus(_ expected: ResetStatus, at now: Date) throws(LatchkeyError) {
        let status = status(at: now)
        if status == .expired { throw .requestExpired(id: id) }
        guard status == expected else { throw .requestNotPending(id: id, status: status) }
    }

    private func requireOpen(at now: Date) throws(LatchkeyError) {
        let status = status(at: now)
        if status == .expired { throw .requestExpired(id: id) }
        guard status.isOpen else { throw .requestNotPending(id: id, status: status) }
    }
}

/// What the platform accepts as a sealed password: `v2.` and base64url of an HPKE encapsulated key and ciphertext,
/// so a clear password sent by mistake is refused rather than stored.
public enum SealedPasswordFormat {
    public static let maximumCharacters = 4096

    public static func check(_ sealed: String) throws(LatchkeyError) {
        guard sealed.count <= maximumCharacters, PasswordSeal.isWellFormed(sealed) else {
            throw .invalidRequest(
                "sealedPassword must be the new password sealed to the device's certified key (HPKE, X25519 / HKDF-SHA256 / AES-128-GCM) as 'v2.' and base64url; never send a clear password."
            )
        }
    }
}
