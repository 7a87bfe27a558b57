import Crypto
import Foundation
import LatchkeyProtocol

/// A reset request as a reader sees it now: expiry applied, the owner's e-mail masked.
public struct ResetRequestView: Sendable, Equatable {
    public var request: PasswordResetRequest
    public var status: ResetStatus
    public var ownerEmailMasked: String
    public var installerName: String
}

/// The reset-request lifecycle: request, approve, decline, cancel, expire. Each change writes the request, its
/// audit line and its notifications in one transaction, then publishes the notifications live.
public struct PasswordResetService: Sendable {
    let store: any LatchkeyStore
    let clock: LatchkeyClock
    let windows: ResetWindows
    let compatibility: CompatibilityList
    let publisher: any NotificationPublisher
    /// The platform's Ed25519 key, which signs grants and approval notices.
    let signingKey: Curve25519.Signing.PrivateKey
    /// Reaches devices over their channels: approval notices, deliveries with a presence code.
    let messenger: any DeviceMessenger
    let limiter: RateLimiter
    /// Whether the operator configured mail: without it, nothing is queued that nobody would send.
    let queuesMail: Bool

    public init(
        store: any LatchkeyStore, clock: LatchkeyClock, windows: ResetWindows, compatibility: CompatibilityList,
        publisher: any NotificationPublisher, signingKey: Curve25519.Signing.PrivateKey, messenger: any DeviceMessenger,
        limiter: RateLimiter, queuesMail: Bool = false
    ) {
        self.queuesMail = queuesMail
        self.limiter = limiter
        self.messenger = messenger
        self.store = store
        self.clock = clock
        self.windows = windows
        self.compatibility = compatibility
        self.publisher = publisher
        self.signingKey = signingKey
    }

    // MARK: - Request

    /// An installer asks for a reset of one device, off-site or on-site; or its owner asks for their own (`owner`).
    public func request(serial: String, mode: ResetMode, by account: Account) async throws -> ResetRequestView {
        switch (account.role, mode) {
        case (.installer, .onSite), (.installer, .offSite), (.owner, .owner): break
        case (.installer, .owner):
            throw LatchkeyError.forbidden("Only the device's owner asks for their own reset; installers ask on-site or off-site.")
        case (.owner, _):
            throw LatchkeyError.forbidden("Owners approve installers' requests; to reset a device of yours yourself, ask with mode 'owner'.")
        }
        let now = clock.now()
        let outcome = try await store.transaction { session in
            let parties = mode == .owner
                ? try await self.partiesForOwnReset(serial: serial, owner: account, in: session)
                : try await self.partiesForNewRequest(serial: serial, installer: account, at: now, in: session)
            var notifications: [AccountNotification] = []
            for var open in try await session.resetRequests.open(deviceSerial: parties.device.serial) {
                guard open.isDue(at: now) else {
                    return Outcome<ResetRequestView>(notifications: notifications, failure: .requestAlreadyOpen(serial: parties.device.serial, id: open.id))
                }
                notifications += try await self.expire(&open, at: now, in: session)
            }
            let request = PasswordResetRequest.open(
                device: parties.device, site: parties.site, installerId: account.id, mode: mode, windows: self.windows,
                at: now)
            try await session.resetRequests.insert(request)
            let requestParties = ResetParties(request: request, device: parties.device, site: parties.site,
                                              owner: parties.owner, installer: account)
            try await self.audit(requestParties, action: .resetRequested, actor: account.id, at: now, in: session, detail: mode.rawValue)
            notifications += try await self.notify(ResetNotices.requested(requestParties, window: self.windows.window(for: mode), at: now),
                                                   about: requestParties, in: session)
            return Outcome(value: self.view(request, parties: requestParties, at: now), notifications: notifications)
        }
        return try await finish(outcome)
    }

    // MARK: - Read

    public func list(for account: Account, status: ResetStatus?, page: PageRequest = PageRequest()) async throws -> Page<ResetRequestView> {
        let now = clock.now()
        return try await store.read { session in
            let requests = try await session.resetRequests.involving(accountId: account.id, status: status, at: now, page: page)
            let people = try await session.accounts.find(ids: Set(requests.items.flatMap { [$0.ownerId, $0.installerId] }))
            return Page(items: requests.items.compactMap { request in
                guard let owner = people[request.ownerId], let installer = people[request.installerId] else { return nil }
                return self.view(request, owner: owner, installer: installer, at: now)
            }, next: requests.next)
        }
    }

    public func get(id: UUID, for account: Account) async throws -> ResetRequestView {
        let now = clock.now()
        return try await store.read { session in
            guard let (request, owner, installer) = try await session.resetRequests.findWithPeople(id: id), request.involves(account.id)
            else { throw Self.notVisible(id) }
            return self.view(request, owner: owner, installer: installer, at: now)
        }
    }

    // MARK: - Owner and installer actions

    public func approve(id: UUID, sealedPassword: String, by account: Account) async throws -> ResetRequestView {
        let view = try await transition(id: id, by: account, action: .resetApproved) { request, now in
            try request.approve(by: account.id, sealedPassword: sealedPassword, at: now)
        } notices: { parties, now in ResetNotices.approved(parties, at: now) }
        // The device may now show a presence code for it (the browser path); a device offline gets it on reconnecting.
        await messenger.notify(try approvalNotice(view), serial: view.request.deviceSerial)
        return view
    }

    public func decline(id: UUID, by account: Account) async throws -> ResetRequestView {
        try await transition(id: id, by: account, action: .resetDeclined) { request, now in
            try request.decline(by: account.id, at: now)
        } notices: { parties, now in ResetNotices.declined(parties, at: now) }
    }

    public func cancel(id: UUID, by account: Account) async throws -> ResetRequestView {
        try await transition(id: id, by: account, action: .resetCancelled) { request, now in
            try request.cancel(by: account.id, at: now)
        } notices: { parties, now in ResetNotices.cancelled(parties, reason: nil, at: now) }
    }

    /// Writes down every request whose window closed, and tells both sides. Returns how many expired.
    @discardableResult
    public func expireDue() async throws -> Int {
        let now = clock.now()
        let outcome = try await store.transaction { session in
            var notifications: [AccountNotification] = []
            var count = 0
            for var request in try await session.resetRequests.due(at: now, limit: 200) {
                notifications += try await self.expire(&request, at: now, in: session)
                count += 1
            }
            return Outcome(value: count, notifications: notifications)
        }
        return try await finish(outcome)
    }

    /// Cancels an installer's open requests on a site, inside the caller's transaction (revoking an authorization).
    func cancelOpenRequests(
        siteId: UUID, installerId: UUID, by owner: Account, at now: Date, in session: any StoreSession
    ) async throws -> [AccountNotification] {
        try await cancel(try await session.resetRequests.open(siteId: siteId, installerId: installerId),
                         reason: .authorizationRevoked, by: owner, at: now, in: session)
    }

    /// Cancels a device's open requests, inside the caller's transaction (unbinding the device).
    func cancelOpenRequests(deviceSerial: String, by owner: Account, at now: Date, in session: any StoreSession) async throws -> [AccountNotification] {
        try await cancel(try await session.resetRequests.open(deviceSerial: deviceSerial),
                         reason: .deviceUnbound, by: owner, at: now, in: session)
    }

    private func cancel(
        _ requests: [PasswordResetRequest], reason: CancelReason, by owner: Account, at now: Date, in session: any StoreSession
    ) async throws -> [AccountNotification] {
        var notifications: [AccountNotification] = []
        for var request in requests {
            if request.isDue(at: now) {
                notifications += try await expire(&request, at: now, in: session)
                continue
            }
            try request.cancelByOwnerAction(at: now)
            try await session.resetRequests.update(request)
            let parties = try await ResetParties.load(request, in: session)
            try await audit(parties, action: .resetCancelled, actor: owner.id, at: now, in: session, detail: reason.rawValue)
            notifications += try await notify(ResetNotices.cancelled(parties, reason: reason, at: now), about: parties, cancelReason: reason, in: session)
        }
        return notifications
    }

    // MARK: - Machinery

    /// Loads a request the account may see, applies one transition, and writes it with its audit line and
    /// notifications. A request found past its window is written as expired and the action answers `requestExpired`.
    private func transition(
        id: UUID, by account: Account, action: AuditAction,
        _ change: @escaping @Sendable (inout PasswordResetRequest, Date) throws -> Void,
        notices: @escaping @Sendable (ResetParties, Date) -> [AccountNotification]
    ) async throws -> ResetRequestView {
        let now = clock.now()
        let outcome = try await store.transaction { session in
            try await self.whileOpen(id, visibleTo: account, at: now, in: session) { request -> Outcome<ResetRequestView> in
                var parties = try await ResetParties.load(request, in: session)
                do {
                    try change(&request, now)
                } catch let error as LatchkeyError {
                    try await self.audit(parties, action: action, actor: account.id, at: now, in: session,
                                         outcome: "refused: \(error.code.rawValue)")
                    return Outcome(failure: error)
                }
                try await session.resetRequests.update(request)
                parties.request = request
                try await self.audit(parties, action: action, actor: account.id, at: now, in: session)
                let notifications = try await self.notify(notices(parties, now), about: parties, in: session)
                return Outcome(value: self.view(request, parties: parties, at: now), notifications: notifications)
            }
        }
        return try await finish(outcome)
    }

    /// What every change to one request starts with: the request as `account` may see it; if its window has closed, it
    /// is written down as expired (both sides told) and `body` does not run.
    func whileOpen<Value>(
        _ id: UUID, visibleTo account: Account, at now: Date, in session: any StoreSession,
        _ body: (inout PasswordResetRequest) async throws -> Outcome<Value>
    ) async throws -> Outcome<Value> {
        var request = try await Self.visibleRequest(id: id, to: account, in: session)
        guard !request.isDue(at: now) else {
            return Outcome(notifications: try await expire(&request, at: now, in: session), failure: .requestExpired(id: id))
        }
        return try await body(&request)
    }

    func finish<Value>(_ outcome: Outcome<Value>) async throws -> Value {
        try await outcome.settle(publishingWith: publisher)
    }

    func expire(
        _ request: inout PasswordResetRequest, at now: Date, in session: any StoreSession
    ) async throws -> [AccountNotification] {
        request.expire(at: now)
        try await session.resetRequests.update(request)
        let parties = try await ResetParties.load(request, in: session)
        try await audit(parties, action: .resetExpired, actor: nil, at: now, in: session)
        return try await notify(ResetNotices.expired(parties, at: now), about: parties, in: session)
    }

    /// Stores the notices and, when the operator configured mail, queues the e-mails they warrant: in the same
    /// transaction, so a reset step and its e-mails are written together or not at all, and sending never holds it up.
    func notify(
        _ notifications: [AccountNotification], about parties: ResetParties, cancelReason: CancelReason? = nil,
        in session: any StoreSession
    ) async throws -> [AccountNotification] {
        try await session.notifications.insert(notifications)
        for notification in notifications {
            guard queuesMail, let mail = QueuedMail.about(notification, parties, cancelReason: cancelReason) else { continue }
            try await session.mailQueue.enqueue(mail)
        }
        return notifications
    }

    func audit(
        _ parties: ResetParties, action: AuditAction, actor: UUID?, at now: Date, in session: any StoreSession,
        outcome: String? = nil, detail: String? = nil
    ) async throws {
        let request = parties.request
        try await session.audit.append(
            AuditEntry(at: now, actorId: actor, siteId: request.siteId, deviceSerial: request.deviceSerial,
                       requestId: request.id, action: action, outcome: outcome ?? request.storedStatus.rawValue,
                       detail: detail ?? request.mode.rawValue))
    }

    func view(_ request: PasswordResetRequest, owner: Account, installer: Account, at now: Date) -> ResetRequestView {
        ResetRequestView(request: request, status: request.status(at: now), ownerEmailMasked: EmailMask.mask(owner.email),
                         installerName: installer.name)
    }

    func view(_ request: PasswordResetRequest, parties: ResetParties, at now: Date) -> ResetRequestView {
        view(request, owner: parties.owner, installer: parties.installer, at: now)
    }

    /// Checks everything a new request needs: a bound device, a live `password_reset` authorization, compatibility.
    private func partiesForNewRequest(
        serial: String, installer: Account, at now: Date, in session: any StoreSession
    ) async throws -> (device: Device, site: Site, owner: Account) {
        let notFound = LatchkeyError.notFound("No device with serial \(serial) on a site you are authorized on.")
        guard serial.count <= 64, let device = try await session.devices.find(serial: serial), let siteId = device.siteId,
            let site = try await session.sites.find(id: siteId),
            let authorization = try await session.sites.authorization(siteId: siteId, installerId: installer.id)
        else { throw notFound }
        guard authorization.isActive(at: now) else { throw LatchkeyError.siteNotAuthorized(site: site.name, missing: nil) }
        guard authorization.allows(.passwordReset, at: now) else {
            throw LatchkeyError.siteNotAuthorized(site: site.name, missing: .passwordReset)
        }
        try compatibility.checkSupports(model: device.model, firmware: device.firmware)
        guard let owner = try await session.accounts.find(id: site.ownerId) else { throw notFound }
        return (device, site, owner)
    }

    /// The owner's own reset: a device bound to a site of theirs, compatible like any other.
    private func partiesForOwnReset(serial: String, owner: Account, in session: any StoreSession)
        async throws -> (device: Device, site: Site, owner: Account)
    {
        guard serial.count <= 64, let device = try await session.devices.find(serial: serial), let siteId = device.siteId,
            let site = try await session.sites.find(id: siteId), site.ownerId == owner.id
        else { throw LatchkeyError.notFound("No device with serial \(serial) on a site of yours.") }
        try compatibility.checkSupports(model: device.model, firmware: device.firmware)
        return (device, site, owner)
    }

    static func visibleRequest(id: UUID, to account: Account, in session: any StoreSession) async throws -> PasswordResetRequest {
        guard let request = try await session.resetRequests.find(id: id), request.involves(account.id) else { throw notVisible(id) }
        return request
    }

    private static func notVisible(_ id: UUID) -> LatchkeyError {
        .notFound("No password reset request with id \(id) is visible to you.")
    }
}
