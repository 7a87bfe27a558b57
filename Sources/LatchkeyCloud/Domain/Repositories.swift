import Foundation
import LatchkeyProtocol

/// Where the domain keeps its state. Every change happens inside `transaction`, so a crash leaves either all of
/// a change or none of it; reads that change nothing use `read`.
public protocol LatchkeyStore: Sendable {
    func transaction<T: Sendable>(_ work: @escaping @Sendable (any StoreSession) async throws -> T) async throws -> T
    func read<T: Sendable>(_ work: @escaping @Sendable (any StoreSession) async throws -> T) async throws -> T
}

/// The repositories as seen from inside one transaction (or one read).
public protocol StoreSession: Sendable {
    var accounts: any AccountRepository { get }
    var sites: any SiteRepository { get }
    var devices: any DeviceRepository { get }
    var bindingGuards: any BindingGuardRepository { get }
    var rateCounters: any RateCounterRepository { get }
    var resetRequests: any ResetRequestRepository { get }
    var notifications: any NotificationRepository { get }
    var audit: any AuditLog { get }
    var mailQueue: any MailQueue { get }
}

public protocol AccountRepository: Sendable {
    func find(id: UUID) async throws -> Account?
    func find(email: String) async throws -> Account?
    /// The accounts among `ids` that exist, in one query.
    func find(ids: Set<UUID>) async throws -> [UUID: Account]
    /// Throws `accountExists` when the e-mail is taken.
    func insert(_ account: Account) async throws
    func setLanguage(_ language: Language, accountId: UUID) async throws
    func insert(_ token: SessionToken) async throws
    func findToken(hash: String) async throws -> SessionToken?
    func deleteToken(hash: String) async throws
    func deleteTokens(expiredBefore now: Date) async throws
}

public protocol SiteRepository: Sendable {
    func find(id: UUID) async throws -> Site?
    /// The site and the installer's authorization on it (if any), in one query: what deciding visibility needs.
    func find(id: UUID, authorizationOf installerId: UUID) async throws -> (Site, SiteAuthorization?)?
    /// The owner's sites, oldest first.
    func owned(by ownerId: UUID, page: PageRequest) async throws -> Page<Site>
    /// Sites on which the installer holds an authorization still active at `now`, in the order they were authorized.
    func authorized(for installerId: UUID, activeAt now: Date, page: PageRequest) async throws -> Page<Site>
    func insert(_ site: Site) async throws
    /// The installers authorized on the site, with their accounts, in the order they were authorized: one query.
    func installers(siteId: UUID) async throws -> [AuthorizedInstaller]
    func authorization(siteId: UUID, installerId: UUID) async throws -> SiteAuthorization?
    /// Inserts or replaces the installer's authorization on the site.
    func save(_ authorization: SiteAuthorization) async throws
    func deleteAuthorization(siteId: UUID, installerId: UUID) async throws
}

public protocol DeviceRepository: Sendable {
    /// Inside a transaction, the device stays locked until it commits.
    func find(serial: String) async throws -> Device?
    /// A site's devices by serial, read in one statement with the site and the installer's authorization on it (the
    /// checks that decide whether the caller sees the site at all); nil when there is no such site.
    func onSite(_ siteId: UUID, authorizationOf installerId: UUID, page: PageRequest) async throws -> SiteDevices?
    /// The first `perSite` devices (by serial) of each site, in one query, and whether each site has more.
    func onSites(_ siteIds: [UUID], perSite: Int) async throws -> [UUID: (devices: [DeviceListing], more: Bool)]
    func save(_ device: Device) async throws
    /// Marks offline, in one statement, every device still marked online whose node (or, without one, the device
    /// itself) has not been heard from since `cutoff`, and forgets nodes gone for a day.
    func markOffline(silentSince cutoff: Date) async throws
    /// This node is alive: one row per node, whatever number of channels it holds.
    func nodeHeard(_ node: String, at now: Date) async throws
    /// Marks the device offline only if `connectionId` is still the channel it was last heard on: a channel that
    /// ends says nothing about a newer one, on this node or another.
    func markOffline(serial: String, connectionId: UUID) async throws
}

/// Attempts per key and window, counted atomically (one statement) so that concurrent nodes never lose a count.
public protocol RateCounterRepository: Sendable {
    /// Adds one to the key's count in `bucket` (a window closing at `closes`, Unix seconds) and returns the new count.
    func hit(key: String, bucket: Int64, closes: Int64) async throws -> Int
    /// Deletes the counts of windows closed before `now` (Unix seconds).
    func purge(closedBefore now: Int64) async throws
}

/// How many wrong label codes each account typed, and until when it may bind no device.
public protocol BindingGuardRepository: Sendable {
    func find(accountId: UUID) async throws -> BindingGuard
    func save(_ guardState: BindingGuard) async throws
}

public protocol ResetRequestRepository: Sendable {
    /// Inside a transaction, the request stays locked until it commits: a change made from it loses no concurrent one.
    func find(id: UUID) async throws -> PasswordResetRequest?
    /// The request with the owner and installer it names, in one statement (reading a request shows both); not locked.
    func findWithPeople(id: UUID) async throws -> (request: PasswordResetRequest, owner: Account, installer: Account)?
    /// In one read: the device, the site and the two people `request` names; nil if any of them is gone. Inside a
    /// transaction the device stays locked until it commits, as `DeviceRepository.find(serial:)` locks it.
    func parties(of request: PasswordResetRequest) async throws -> (device: Device, site: Site, owner: Account, installer: Account)?
    /// Requests stored as pending or approved for the device.
    func open(deviceSerial: String) async throws -> [PasswordResetRequest]
    func open(siteId: UUID, installerId: UUID) async throws -> [PasswordResetRequest]
    /// Requests the account sent or must answer, newest first; with `status`, only those in it at `now` (an open
    /// request whose window closed is expired).
    func involving(accountId: UUID, status: ResetStatus?, at now: Date, page: PageRequest) async throws -> Page<PasswordResetRequest>
    /// For the inbox, in one query: the device and the site's name of each request among `ids` that the account takes
    /// part in and whose site it may still see (its owner, or an installer still authorized on it).
    func subjects(ids: [UUID], visibleTo accountId: UUID, at now: Date) async throws -> [UUID: RequestSubject]
    /// Requests stored as open whose window has closed.
    func due(at now: Date, limit: Int) async throws -> [PasswordResetRequest]
    /// Throws `requestAlreadyOpen` when the device has an open request already.
    func insert(_ request: PasswordResetRequest) async throws
    /// Writes what a transition changes (status, times, sealed password): the rest is fixed when the request opens,
    /// and left alone, so the indexes on it are not written again.
    func update(_ request: PasswordResetRequest) async throws
    func countByStatus() async throws -> [ResetStatus: Int]
    /// Remembers a device nonce spent on a grant; throws `proximityInvalid` when the nonce was spent before.
    func recordGrant(requestId: UUID, serial: String, nonce: String, at now: Date) async throws
    func grantIssued(requestId: UUID, nonce: String) async throws -> Bool
    func nonceSpent(_ nonce: String) async throws -> Bool
}

public protocol NotificationRepository: Sendable {
    /// All in one write: a reset step tells both sides at once.
    func insert(_ notifications: [AccountNotification]) async throws
    /// Newest first.
    func list(accountId: UUID, category: NotificationCategory?, page: PageRequest) async throws -> Page<AccountNotification>
    func find(id: UUID) async throws -> AccountNotification?
    func markRead(id: UUID) async throws
}

public protocol AuditLog: Sendable {
    func append(_ entry: AuditEntry) async throws
    /// A device's newest `limit` lines while bound to `siteId`, from its latest binding there, oldest first.
    func entries(deviceSerial: String, boundTo siteId: UUID, limit: Int) async throws -> [AuditEntry]
    /// A site's newest `limit` lines, oldest first.
    func entries(siteId: UUID, limit: Int) async throws -> [AuditEntry]
    /// Every line after `sequence`, oldest first, `limit` at a time: the operator's export.
    func entries(after sequence: Int, limit: Int) async throws -> [AuditEntry]
}

/// E-mails waiting to be sent, in the database so that a crash, a restart or a mail server that is down loses none;
/// several nodes share the queue, each mail claimed by one of them at a time.
public protocol MailQueue: Sendable {
    func enqueue(_ mail: QueuedMail) async throws
    /// Claims up to `limit` mails due at `now` for this node until `leaseUntil`, counting an attempt on each.
    func claimDue(at now: Date, leaseUntil: Date, limit: Int) async throws -> [QueuedMail]
    /// Sent: the mail leaves the queue.
    func sent(id: UUID) async throws
    /// Not sent: tried again at `next`.
    func retry(id: UUID, at next: Date, error: String) async throws
    /// Never to be sent (the recipient refused, or tried for too long): kept for the operator, as failed.
    func giveUp(id: UUID, error: String) async throws
    /// Mails waiting, and mails given up.
    func counts() async throws -> (waiting: Int, failed: Int)
}

/// Hands notifications to whoever listens live (server-sent events), after the transaction that wrote them commits.
public protocol NotificationPublisher: Sendable {
    func publish(_ notifications: [AccountNotification]) async
    /// A session (its token's hash) was signed out: live streams opened with it end, on every node.
    func sessionEnded(_ session: String) async
}

/// Reaches a device over its channel, on whichever node holds it.
public protocol DeviceMessenger: Sendable {
    /// Tells the device its binding changed, so it voids the nonces it handed out before.
    func bindingChanged(serial: String, siteId: UUID?) async
    /// Asks the device to compare a typed code; throws `deviceOffline` when no node reaches it in time.
    func check(_ check: CodeCheck, serial: String) async throws -> CodeCheckAnswer
    /// Tells the device the owner approved a reset of it, so its page may show a presence code.
    func notify(_ notice: ApprovalNotice, serial: String) async
    /// Hands the device a reset with the presence code the courier typed; throws `deviceOffline` when unreachable.
    func deliver(_ delivery: PresenceDelivery, serial: String) async throws -> PresenceDeliveryAnswer
}
