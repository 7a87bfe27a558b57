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

    func insert(_ request: PasswordResetRequest) async throws {
        let model = PasswordResetRequestModel()
        model.id = request.id
        Self.copy(request, into: model)
        try await insertChecked(.requestAlreadyOpen(serial: request.deviceSerial)) { try await model.create(on: database) }
    }

    func update(_ request: PasswordResetRequest) async throws {
        guard let model = try await PasswordResetRequestModel.find(request.id, on: database) else {
            throw LatchkeyError.notFound("No password reset request with id \(request.id).")
        }
        Self.copy(request, into: model)
        try await model.update(on: database)
    }

    func countByStatus() async throws -> [ResetStatus: Int] {
        var counts: [ResetStatus: Int] = [:]
        for status in ResetStatus.allCases {
            counts[status] = try await PasswordResetRequestModel.query(on: database).filter(\.$status == status.rawValue).count()
        }
        return counts
    }

    func recordGrant(requestId: UUID, serial: String, nonce: String, at now: Date) async throws {
        let model = ResetGrantModel()
        model.id = nonce
        model.requestId = requestId
        model.deviceSerial = serial
        model.grantedAt = now
        try await insertChecked(.proximityInvalid("This proximity proof was used before: ask the device for a fresh challenge.")) {
            try await model.create(on: database)
        }
    }

    func nonceSpent(_ nonce: String) async throws -> Bool {
        try await ResetGrantModel.query(on: database).filter(\.$id == nonce).count() > 0
    }

    func grantIssued(requestId: UUID, nonce: String) async throws -> Bool {
        try await ResetGrantModel.query(on: database).filter(\.$id == nonce).filter(\.$requestId == requestId).count() > 0
    }

    private static func copy(_ request: PasswordResetRequest, into model: PasswordResetRequestModel) {
        model.deviceSerial = request.deviceSerial
        model.siteId = request.siteId
        model.ownerId = request.ownerId
        model.installerId = request.installerId
        model.mode = request.mode.rawValue
        model.status = request.storedStatus.rawValue
        model.createdAt = request.createdAt
        model.expiresAt = request.expiresAt
        model.updatedAt = request.updatedAt
        model.sealedPassword = request.sealedPassword
        model.completedAt = request.completedAt
    }
}

struct FluentNotificationRepository: NotificationRepository {
    let database: any Database

    func insert(_ notification: AccountNotification) async throws {
        let model = NotificationModel()
        model.id = notification.id
        model.accountId = notification.accountId
        model.category = notification.category.rawValue
        model.kind = notification.kind.rawValue
        model.title = notification.title
        model.body = notification.body
        model.requestId = notification.requestId
        model.createdAt = notification.createdAt
        model.read = notification.read
        try await model.create(on: database)
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
        try await NotificationModel.query(on: database).filter(\.$id == id).set(\.$read, to: true).update()
    }
}

struct FluentAuditLog: AuditLog {
    let database: any Database

    func append(_ entry: AuditEntry) async throws {
        let model = AuditEntryModel()
        model.at = entry.at
        model.actorId = entry.actorId
        model.siteId = entry.siteId
        model.deviceSerial = entry.deviceSerial
        model.requestId = entry.requestId
        model.action = entry.action.rawValue
        model.outcome = entry.outcome
        model.detail = entry.detail
        try await model.create(on: database)
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
