import Foundation
import LatchkeyProtocol

/// An installer on a site, as the owner sees it.
public struct AuthorizedInstaller: Sendable, Equatable {
    public var authorization: SiteAuthorization
    public var installer: Account
}

/// Sites, who is authorized on them, and the devices on them — each visible only to its owner and the
/// installers the owner authorized.
public struct SiteService: Sendable {
    let store: any LatchkeyStore
    let clock: LatchkeyClock
    let resets: PasswordResetService

    public init(store: any LatchkeyStore, clock: LatchkeyClock, resets: PasswordResetService) {
        self.store = store
        self.clock = clock
        self.resets = resets
    }

    public static let maximumAddressLength = 200

    public func create(name: String, address: String?, by account: Account) async throws -> Site {
        guard account.role == .owner else { throw LatchkeyError.forbidden("Only owners create sites.") }
        let name = try AccountRules.checkedText(name, field: "site name", maximum: AccountRules.maximumNameLength)
        let address = try address.map {
            try AccountRules.checkedText($0, field: "address", maximum: Self.maximumAddressLength)
        }
        let site = Site(id: UUID(), ownerId: account.id, name: name, address: address, createdAt: clock.now())
        try await store.transaction { session in
            try await session.sites.insert(site)
            try await session.audit.append(
                AuditEntry(at: site.createdAt, actorId: account.id, siteId: site.id, deviceSerial: nil, requestId: nil,
                           action: .siteCreated, outcome: "ok", detail: site.name))
        }
        return site
    }

    /// Owners see their sites; installers the sites they hold a live authorization on.
    public func sites(visibleTo account: Account, page: PageRequest = PageRequest()) async throws -> Page<Site> {
        let now = clock.now()
        return try await store.read { session in try await Self.sites(visibleTo: account, at: now, page: page, in: session) }
    }

    /// A page of sites, each with its first `perSite` devices and whether it has more, in two queries: the portal's
    /// sites page.
    public func sitesWithDevices(visibleTo account: Account, page: PageRequest, perSite: Int)
        async throws -> Page<(site: Site, devices: [DeviceListing], more: Bool)>
    {
        let now = clock.now()
        return try await store.read { session in
            let sites = try await Self.sites(visibleTo: account, at: now, page: page, in: session)
            let devices = try await session.devices.onSites(sites.items.map(\.id), perSite: perSite)
            return sites.map { site in (site, devices[site.id]?.devices ?? [], devices[site.id]?.more ?? false) }
        }
    }

    private static func sites(visibleTo account: Account, at now: Date, page: PageRequest, in session: any StoreSession) async throws -> Page<Site> {
        switch account.role {
        case .owner: try await session.sites.owned(by: account.id, page: page)
        case .installer: try await session.sites.authorized(for: account.id, activeAt: now, page: page)
        }
    }

    /// One site; its authorizations come with it for the owner only.
    public func site(id: UUID, visibleTo account: Account) async throws -> (Site, [AuthorizedInstaller]?) {
        let now = clock.now()
        return try await store.read { session in try await Self.site(id: id, visibleTo: account, at: now, in: session) }
    }

    /// A site with its devices (and, for the owner, its authorizations) in one read: the site page.
    public func siteWithDevices(id: UUID, visibleTo account: Account, page: PageRequest = PageRequest())
        async throws -> (Site, [AuthorizedInstaller]?, Page<DeviceListing>)
    {
        let now = clock.now()
        return try await store.read { session in
            let (site, devices) = try await Self.visibleSiteWithDevices(id: id, to: account, at: now, page: page, in: session)
            return (site, site.ownerId == account.id ? try await session.sites.installers(siteId: site.id) : nil, devices)
        }
    }

    private static func site(id: UUID, visibleTo account: Account, at now: Date, in session: any StoreSession)
        async throws -> (Site, [AuthorizedInstaller]?)
    {
        let site = try await visibleSite(id: id, to: account, at: now, in: session)
        return (site, site.ownerId == account.id ? try await session.sites.installers(siteId: site.id) : nil)
    }

    /// Lets an installer work on the site; granting again replaces the permissions and expiry.
    public func authorize(
        siteId: UUID, installerEmail: String, permissions: [Permission], expiresAt: Date?, by account: Account
    ) async throws -> AuthorizedInstaller {
        let email = try AccountRules.normalizedEmail(installerEmail)
        guard !permissions.isEmpty else {
            throw LatchkeyError.invalidRequest("Name at least one permission: \(Permission.allowedValues).")
        }
        let now = clock.now()
        if let expiresAt, expiresAt <= now {
            throw LatchkeyError.invalidRequest("expiresAt must be in the future.")
        }
        return try await store.transaction { session in
            let site = try await Self.ownedSite(id: siteId, by: account, in: session)
            guard let installer = try await session.accounts.find(email: email) else {
                throw LatchkeyError.notFound("No installer account has the e-mail \(email): ask the installer to sign up first.")
            }
            guard installer.role == .installer else {
                throw LatchkeyError.invalidRequest("\(email) is not an installer account.")
            }
            let authorization = SiteAuthorization(
                siteId: site.id, installerId: installer.id, permissions: Set(permissions), expiresAt: expiresAt,
                createdAt: now)
            try await session.sites.save(authorization)
            try await session.audit.append(
                AuditEntry(at: now, actorId: account.id, siteId: site.id, deviceSerial: nil, requestId: nil,
                           action: .authorizationGranted, outcome: "ok",
                           detail: "\(email): \(permissions.map(\.rawValue).sorted().joined(separator: ","))"))
            return AuthorizedInstaller(authorization: authorization, installer: installer)
        }
    }

    /// Takes an installer's authorization away and cancels the installer's open requests on the site.
    public func revoke(siteId: UUID, installerId: UUID, by account: Account) async throws {
        let now = clock.now()
        let notifications = try await store.transaction { session in
            let site = try await Self.ownedSite(id: siteId, by: account, in: session)
            guard try await session.sites.authorization(siteId: site.id, installerId: installerId) != nil else {
                throw LatchkeyError.notFound("Installer \(installerId) is not authorized on site '\(site.name)'.")
            }
            try await session.sites.deleteAuthorization(siteId: site.id, installerId: installerId)
            try await session.audit.append(
                AuditEntry(at: now, actorId: account.id, siteId: site.id, deviceSerial: nil, requestId: nil,
                           action: .authorizationRevoked, outcome: "ok", detail: installerId.uuidString))
            return try await resets.cancelOpenRequests(siteId: site.id, installerId: installerId, by: account, at: now, in: session)
        }
        await resets.publisher.publish(notifications)
    }

    public func devices(siteId: UUID, visibleTo account: Account, page: PageRequest = PageRequest()) async throws -> Page<DeviceListing> {
        let now = clock.now()
        return try await store.read { session in
            try await Self.visibleSiteWithDevices(id: siteId, to: account, at: now, page: page, in: session).1
        }
    }

    /// A device's history for its owner: what happened under their binding, with who did it.
    public func auditHistory(serial: String, visibleTo account: Account) async throws -> [AuditLine] {
        try await store.read { session in
            guard let device = try await session.devices.find(serial: serial), let siteId = device.siteId,
                let site = try await session.sites.find(id: siteId), site.ownerId == account.id
            else { throw LatchkeyError.notFound("No device with serial \(serial) on your sites.") }
            return try await Self.named(session.audit.entries(deviceSerial: device.serial, boundTo: siteId, limit: Self.historyLimit), in: session)
        }
    }

    /// A site's history for its owner: its devices, authorizations and resets. An installer authorized on the site is
    /// refused; anyone else does not see the site.
    public func auditHistory(siteId: UUID, visibleTo account: Account) async throws -> [AuditLine] {
        let now = clock.now()
        return try await store.read { session in
            let site = try await Self.visibleSite(id: siteId, to: account, at: now, in: session)
            guard site.ownerId == account.id else { throw LatchkeyError.forbidden("Only the site's owner reads and exports its history.") }
            return try await Self.named(session.audit.entries(siteId: site.id, limit: Self.historyLimit), in: session)
        }
    }

    static let historyLimit = 5_000

    static func named(_ entries: [AuditEntry], in session: any StoreSession) async throws -> [AuditLine] {
        var names: [UUID: String] = [:]
        for id in Set(entries.compactMap(\.actorId)) { names[id] = try await session.accounts.find(id: id)?.name }
        return entries.map { AuditLine(entry: $0, actorName: $0.actorId.flatMap { names[$0] }) }
    }

    // MARK: - Visibility

    /// The site, if the account owns it or holds a live authorization on it; otherwise `notFound`, so that
    /// other tenants cannot even learn that the id exists.
    static func visibleSite(id: UUID, to account: Account, at now: Date, in session: any StoreSession) async throws -> Site {
        guard let (site, authorization) = try await session.sites.find(id: id, authorizationOf: account.id),
            site.isVisible(to: account, through: authorization, at: now)
        else { throw notVisible(id) }
        return site
    }

    /// A visible site and a page of its devices, in one statement (the reads of a site's screen).
    static func visibleSiteWithDevices(id: UUID, to account: Account, at now: Date, page: PageRequest, in session: any StoreSession)
        async throws -> (Site, Page<DeviceListing>)
    {
        guard let read = try await session.devices.onSite(id, authorizationOf: account.id, page: page),
            read.site.isVisible(to: account, through: read.authorization, at: now)
        else { throw notVisible(id) }
        return (read.site, read.devices)
    }

    private static func notVisible(_ id: UUID) -> LatchkeyError {
        .notFound("No site with id \(id) is visible to you.")
    }

    static func ownedSite(id: UUID, by account: Account, in session: any StoreSession) async throws -> Site {
        guard let site = try await session.sites.find(id: id), site.ownerId == account.id else {
            throw LatchkeyError.notFound("No site with id \(id) among your sites.")
        }
        return site
    }
}
