import FluentKit
import SQLKit
import Foundation
import LatchkeyProtocol

struct FluentResetRequestRepository: ResetRequestRepository {
    let database: any Database
    let locksRows: Bool

    private static let openStatuses: [any Encodable & Sendable] = [ResetStatus.pending, .approved].map(\.rawValue)

    func find(id: UUID) async throws -> PasswordResetRequest? {
        try await database.sql.raw("""
            SELECT \(unsafeRaw: Rows.request) FROM password_reset_requests WHERE id = \(bind: id)\(unsafeRaw: forUpdate(database, when: locksRows))
            """).first().map(Rows.request)
    }

    func findWithPeople(id: UUID) async throws -> (request: PasswordResetRequest, owner: Account, installer: Account)? {
        let row = try await database.sql.raw("""
            SELECT \(unsafeRaw: Self.requestWithPeople) FROM password_reset_requests r
            JOIN accounts o ON o.id = r.owner_id JOIN accounts i ON i.id = r.installer_id WHERE r.id = \(bind: id)
            """).first()
        guard let row else { return nil }
        return (try Rows.request(row), try Rows.account(row, prefix: "o_"), try Rows.account(row, prefix: "i_"))
    }

    /// The request's own columns by their names, and each person's prefixed: built once.
    private static let requestWithPeople = Rows.columns(Rows.request, of: "r", prefixed: false) + ", " + Rows.owner + ", " + Rows.installer

    func parties(of request: PasswordResetRequest) async throws -> (device: Device, site: Site, owner: Account, installer: Account)? {
        // Every step of a reset reads these four; one statement instead of four (issue 13: a statement's cost is most of
        // a flow's).
        let row = try await database.sql.raw("""
            SELECT \(unsafeRaw: Rows.deviceColumns), \(unsafeRaw: Rows.siteAsS), \(unsafeRaw: Rows.owner), \(unsafeRaw: Rows.installer)
            \(unsafeRaw: Rows.deviceFrom) JOIN sites s ON s.id = \(bind: request.siteId) \
            JOIN accounts o ON o.id = \(bind: request.ownerId) JOIN accounts i ON i.id = \(bind: request.installerId)
            WHERE d.serial = \(bind: request.deviceSerial)\(unsafeRaw: forUpdate(database, when: locksRows, of: "d"))
            """).first()
        guard let row else { return nil }
        return (try Rows.device(row), try Rows.site(row, prefix: "s_"),
                try Rows.account(row, prefix: "o_"), try Rows.account(row, prefix: "i_"))
    }

    func open(deviceSerial: String) async throws -> [PasswordResetRequest] {
        try await database.sql.raw("""
            SELECT \(unsafeRaw: Rows.request) FROM password_reset_requests
            WHERE device_serial = \(bind: deviceSerial) AND status IN (\(binds: Self.openStatuses))
            """).all().map(Rows.request)
    }

    func open(siteId: UUID, installerId: UUID) async throws -> [PasswordResetRequest] {
        try await database.sql.raw("""
            SELECT \(unsafeRaw: Rows.request) FROM password_reset_requests
            WHERE site_id = \(bind: siteId) AND installer_id = \(bind: installerId) AND status IN (\(binds: Self.openStatuses))
            """).all().map(Rows.request)
    }

    func involving(accountId: UUID, status: ResetStatus?, at now: Date, page: PageRequest) async throws -> Page<PasswordResetRequest> {
        var query: SQLQueryString = """
            SELECT \(unsafeRaw: Rows.request) FROM password_reset_requests
            WHERE (owner_id = \(bind: accountId) OR installer_id = \(bind: accountId))
            """
        // As `PasswordResetRequest.status(at:)` reads it: an open request whose window closed is expired.
        switch status {
        case nil: break
        case .pending?, .approved?:
            query += " AND status = \(bind: status?.rawValue ?? "") AND expires_at > \(bind: now)"
        case .expired?:
            query += """
                 AND (status = \(bind: ResetStatus.expired.rawValue) \
                OR (status IN (\(binds: Self.openStatuses)) AND expires_at <= \(bind: now)))
                """
        case .some(let ended):
            query += " AND status = \(bind: ended.rawValue)"
        }
        query += try Keyset.page(page, time: "created_at", id: "id", newestFirst: true)
        let rows = try await database.sql.raw(query).all().map(Rows.request)
        return Page(reading: rows, limit: page.limit) { .time($0.createdAt, $0.id) }
    }

    func subjects(ids: [UUID], visibleTo accountId: UUID, at now: Date) async throws -> [UUID: RequestSubject] {
        guard !ids.isEmpty else { return [:] }
        let rows = try await database.sql.raw("""
            SELECT r.id, r.device_serial, s.name FROM password_reset_requests r JOIN sites s ON s.id = r.site_id
            LEFT JOIN site_authorizations a ON a.site_id = r.site_id AND a.installer_id = \(bind: accountId)
            WHERE r.id IN (\(binds: ids)) AND (r.owner_id = \(bind: accountId) OR r.installer_id = \(bind: accountId))
            AND (s.owner_id = \(bind: accountId) OR (a.installer_id IS NOT NULL AND (a.expires_at IS NULL OR a.expires_at > \(bind: now))))
            """).all()
        var subjects: [UUID: RequestSubject] = [:]
        for row in rows {
            subjects[try row.decode(column: "id", as: UUID.self)] = RequestSubject(
                deviceSerial: try row.decode(column: "device_serial", as: String.self), siteName: try row.decode(column: "name", as: String.self))
        }
        return subjects
    }

    func due(at now: Date, limit: Int) async throws -> [PasswordResetRequest] {
        try await database.sql.raw("""
            SELECT \(unsafeRaw: Rows.request) FROM password_reset_requests
            WHERE status IN (\(binds: Self.openStatuses)) AND expires_at <= \(bind: now) ORDER BY expires_at LIMIT \(bind: limit)
            """).all().map(Rows.request)
    }

    // The flow's writes are plain SQL too, one statement each: FluentKit's models reflected over their fields on every
    // create (`Mirror`), and an update read the row again first (issue 13: 16 % of a flow's server CPU).
    func insert(_ request: PasswordResetRequest) async throws {
        try await insertChecked(.requestAlreadyOpen(serial: request.deviceSerial)) {
            try await database.sql.raw("""
                INSERT INTO password_reset_requests (\(unsafeRaw: Rows.request))
                VALUES (\(bind: request.id), \(bind: request.deviceSerial), \(bind: request.siteId), \(bind: request.ownerId), \
                \(bind: request.installerId), \(bind: request.mode.rawValue), \(bind: request.storedStatus.rawValue), \
                \(bind: request.createdAt), \(bind: request.expiresAt), \(bind: request.updatedAt), \(bind: request.sealedPassword), \
                \(bind: request.completedAt))
                """).run()
        }
    }

    func update(_ request: PasswordResetRequest) async throws {
        let updated = try await database.sql.raw("""
            UPDATE password_reset_requests SET status = \(bind: request.storedStatus.rawValue), updated_at = \(bind: request.updatedAt), \
            sealed_password = \(bind: request.sealedPassword), \
            completed_at = \(bind: request.completedAt)
            WHERE id = \(bind: request.id) RETURNING id
            """).first()
        guard updated != nil else { throw LatchkeyError.notFound("No password reset request with id \(request.id).") }
    }

    func countByStatus() async throws -> [ResetStatus: Int] {
        var counts: [ResetStatus: Int] = [:]
        for status in ResetStatus.allCases {
            counts[status] = try await PasswordResetRequestModel.query(on: database).filter(\.$status == status.rawValue).count()
        }
        return counts
    }

    func recordGrant(requestId: UUID, serial: String, nonce: String, at now: Date) async throws {
        try await insertChecked(.proximityInvalid("This proximity proof was used before: ask the device for a fresh challenge.")) {
            try await database.sql.raw("""
                INSERT INTO reset_grants (nonce, request_id, device_serial, granted_at)
                VALUES (\(bind: nonce), \(bind: requestId), \(bind: serial), \(bind: now))
                """).run()
        }
    }

    func nonceSpent(_ nonce: String) async throws -> Bool {
        try await database.sql.raw("SELECT 1 AS spent FROM reset_grants WHERE nonce = \(bind: nonce)").first() != nil
    }

    func grantIssued(requestId: UUID, nonce: String) async throws -> Bool {
        try await database.sql.raw("""
            SELECT 1 AS issued FROM reset_grants WHERE nonce = \(bind: nonce) AND request_id = \(bind: requestId)
            """).first() != nil
    }
}

struct FluentNotificationRepository: NotificationRepository {
    let database: any Database

    func insert(_ notifications: [AccountNotification]) async throws {
        guard !notifications.isEmpty else { return }
        var query: SQLQueryString = "INSERT INTO notifications (\(unsafeRaw: Rows.notification)) VALUES "
        for (index, notification) in notifications.enumerated() {
            query += """
                \(unsafeRaw: index == 0 ? "" : ", ")(\(bind: notification.id), \(bind: notification.accountId), \
                \(bind: notification.category.rawValue), \(bind: notification.kind.rawValue), \(bind: notification.title), \
                \(bind: notification.body), \(bind: notification.requestId), \(bind: notification.createdAt), \(bind: notification.read))
                """
        }
        try await database.sql.raw(query).run()
    }

    func list(accountId: UUID, category: NotificationCategory?, page: PageRequest) async throws -> Page<AccountNotification> {
        var query: SQLQueryString = "SELECT \(unsafeRaw: Rows.notification) FROM notifications WHERE account_id = \(bind: accountId)"
        if let category { query += " AND category = \(bind: category.rawValue)" }
        query += try Keyset.page(page, time: "created_at", id: "id", newestFirst: true)
        let rows = try await database.sql.raw(query).all().map(Rows.notification)
        return Page(reading: rows, limit: page.limit) { .time($0.createdAt, $0.id) }
    }

    func find(id: UUID) async throws -> AccountNotification? {
        try await database.sql.raw("SELECT \(unsafeRaw: Rows.notification) FROM notifications WHERE id = \(bind: id)").first()
            .map(Rows.notification)
    }

    func markRead(id: UUID) async throws {
        try await database.sql.raw("UPDATE notifications SET read = \(bind: true) WHERE id = \(bind: id)").run()
    }
}

struct FluentAuditLog: AuditLog {
    let database: any Database

    func append(_ entry: AuditEntry) async throws {
        try await database.sql.raw("""
            INSERT INTO audit_entries (at, actor_id, site_id, device_serial, request_id, action, outcome, detail)
            VALUES (\(bind: entry.at), \(bind: entry.actorId), \(bind: entry.siteId), \(bind: entry.deviceSerial), \
            \(bind: entry.requestId), \(bind: entry.action.rawValue), \(bind: entry.outcome), \(bind: entry.detail))
            """).run()
    }

    func entries(deviceSerial: String, boundTo siteId: UUID, limit: Int) async throws -> [AuditEntry] {
        // From the latest binding to this site on: what came before belongs to whoever held the device then.
        let binding = try await AuditEntryModel.query(on: database).filter(\.$deviceSerial == deviceSerial)
            .filter(\.$siteId == siteId).filter(\.$action == AuditAction.deviceBound.rawValue).sort(\.$id, .descending).first()
        let query = AuditEntryModel.query(on: database).filter(\.$deviceSerial == deviceSerial).filter(\.$siteId == siteId)
        if let since = binding?.id { query.filter(\.$id >= since) }
        return try await Self.lines(query, limit: limit)
    }

    func entries(siteId: UUID, limit: Int) async throws -> [AuditEntry] {
        try await Self.lines(AuditEntryModel.query(on: database).filter(\.$siteId == siteId), limit: limit)
    }

    func entries(after sequence: Int, limit: Int) async throws -> [AuditEntry] {
        try await AuditEntryModel.query(on: database).filter(\.$id > sequence).sort(\.$id).limit(limit).all().map(Self.entry)
    }

    private static func entry(_ model: AuditEntryModel) throws -> AuditEntry {
        AuditEntry(sequence: try model.requireID(), at: model.at, actorId: model.actorId, siteId: model.siteId,
                   deviceSerial: model.deviceSerial, requestId: model.requestId, action: try decodeStored(AuditAction.self, model.action),
                   outcome: model.outcome, detail: model.detail)
    }

    /// The newest `limit` lines of the query, oldest first.
    private static func lines(_ query: QueryBuilder<AuditEntryModel>, limit: Int) async throws -> [AuditEntry] {
        try await query.sort(\.$id, .descending).limit(limit).all().reversed().map(entry)
    }
}
