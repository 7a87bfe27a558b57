import Foundation
import LatchkeyProtocol

/// An owner's place — a shop, a home, a warehouse — where devices are installed.
public struct Site: Sendable, Equatable {
    public var id: UUID
    public var ownerId: UUID
    public var name: String
    public var address: String?
    public var createdAt: Date

    public init(id: UUID, ownerId: UUID, name: String, address: String?, createdAt: Date) {
        self.id = id
        self.ownerId = ownerId
        self.name = name
        self.address = address
        self.createdAt = createdAt
    }

    /// Its owner sees a site, and so does an installer while the owner's authorization on it lasts; nobody else.
    func isVisible(to account: Account, through authorization: SiteAuthorization?, at now: Date) -> Bool {
        if ownerId == account.id { return true }
        guard account.role == .installer, let authorization, authorization.installerId == account.id else { return false }
        return authorization.isActive(at: now)
    }
}

/// A page of a site's devices with what decides who may read it: the site and the reader's authorization on it.
public struct SiteDevices: Sendable {
    public var site: Site
    public var authorization: SiteAuthorization?
    public var devices: Page<DeviceListing>
}

/// What an owner lets one installer do on one site, and until when.
public struct SiteAuthorization: Sendable, Equatable {
    public var siteId: UUID
    public var installerId: UUID
    public var permissions: Set<Permission>
    public var expiresAt: Date?
    public var createdAt: Date

    public init(siteId: UUID, installerId: UUID, permissions: Set<Permission>, expiresAt: Date?, createdAt: Date) {
        self.siteId = siteId
        self.installerId = installerId
        self.permissions = permissions
        self.expiresAt = expiresAt
        self.createdAt = createdAt
    }

    /// An authorization past its expiry grants nothing, whether or not anything has cleaned it up.
    public func isActive(at now: Date) -> Bool {
        expiresAt.map { now < $0 } ?? true
    }

    public func allows(_ permission: Permission, at now: Date) -> Bool {
        isActive(at: now) && permissions.contains(permission)
    }
}

