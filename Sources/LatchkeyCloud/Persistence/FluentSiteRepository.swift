import FluentKit
import SQLKit
import Foundation
import LatchkeyProtocol

struct FluentSiteRepository: SiteRepository {
    let database: any Database

    func find(id: UUID) async throws -> Site? {
        try await database.sql.raw("SELECT \(unsafeRaw: Rows.site) FROM sites WHERE id = \(bind: id)").first().map { try Rows.site($0) }
    }

    func find(id: UUID, authorizationOf installerId: UUID) async throws -> (Site, SiteAuthorization?)? {
        let row = try await database.sql.raw("""
            SELECT \(unsafeRaw: Rows.siteAndAuthorization)
            FROM sites s LEFT JOIN site_authorizations a ON a.site_id = s.id AND a.installer_id = \(bind: installerId)
            WHERE s.id = \(bind: id)
            """).first()
        guard let row else { return nil }
        let authorization = try row.decodeNil(column: "a_site_id") ? nil : try Rows.authorization(row, prefix: "a_")
        return (try Rows.site(row, prefix: "s_"), authorization)
    }

    func owned(by ownerId: UUID, page: PageRequest) async throws -> Page<Site> {
        let rows = try await database.sql.raw("""
            SELECT \(unsafeRaw: Rows.site) FROM sites WHERE owner_id = \(bind: ownerId)\(try Keyset.page(page, time: "created_at", id: "id"))
            """).all().map { try Rows.site($0) }
        return Page(reading: rows, limit: page.limit) { .time($0.createdAt, $0.id) }
    }

    func authorized(for installerId: UUID, activeAt now: Date, page: PageRequest) async throws -> Page<Site> {
        // In the order the installer was authorized: read along the index on (installer, time), a page costs its own
        // rows, however many sites the installer has or the platform holds (ordered by the sites' own time, PostgreSQL
        // read every site to find the installer's 500: 20 ms on 100,000 sites).
        let rows = try await database.sql.raw("""
            SELECT \(unsafeRaw: Rows.siteAsS), a.created_at AS authorized_at
            FROM site_authorizations a JOIN sites s ON s.id = a.site_id
            WHERE a.installer_id = \(bind: installerId) AND (a.expires_at IS NULL OR a.expires_at > \(bind: now))\
            \(try Keyset.page(page, time: "a.created_at", id: "a.site_id"))
            """).all().map { (try Rows.site($0, prefix: "s_"), try $0.decode(column: "authorized_at", as: Date.self)) }
        return Page(reading: rows, limit: page.limit) { .time($0.1, $0.0.id) }.map(\.0)
    }

    func insert(_ site: Site) async throws {
        let model = SiteModel()
        model.id = site.id
        model.ownerId = site.ownerId
        model.name = site.name
        model.address = site.address
        model.createdAt = site.createdAt
        try await model.create(on: database)
    }

    func installers(siteId: UUID) async throws -> [AuthorizedInstaller] {
        try await database.sql.raw("""
            SELECT \(unsafeRaw: Rows.authorizationAndInstaller) FROM site_authorizations a JOIN accounts i ON i.id = a.installer_id
            WHERE a.site_id = \(bind: siteId) ORDER BY a.created_at
            """).all().map { AuthorizedInstaller(authorization: try Rows.authorization($0, prefix: "a_"), installer: try Rows.account($0, prefix: "i_")) }
    }

    func authorization(siteId: UUID, installerId: UUID) async throws -> SiteAuthorization? {
        try await database.sql.raw("""
            SELECT \(unsafeRaw: Rows.authorization) FROM site_authorizations
            WHERE site_id = \(bind: siteId) AND installer_id = \(bind: installerId)
            """).first().map { try Rows.authorization($0) }
    }

    func save(_ authorization: SiteAuthorization) async throws {
        let model = try await model(siteId: authorization.siteId, installerId: authorization.installerId) ?? SiteAuthorizationModel()
        model.siteId = authorization.siteId
        model.installerId = authorization.installerId
        model.permissions = authorization.permissions.map(\.rawValue).sorted().joined(separator: ",")
        model.expiresAt = authorization.expiresAt
        model.createdAt = authorization.createdAt
        try await model.save(on: database)
    }

    func deleteAuthorization(siteId: UUID, installerId: UUID) async throws {
        try await SiteAuthorizationModel.query(on: database)
            .filter(\.$siteId == siteId).filter(\.$installerId == installerId).delete()
    }

    private func model(siteId: UUID, installerId: UUID) async throws -> SiteAuthorizationModel? {
        try await SiteAuthorizationModel.query(on: database)
            .filter(\.$siteId == siteId).filter(\.$installerId == installerId).first()
    }
}

struct FluentBindingGuards: BindingGuardRepository {
    let database: any Database

    func find(accountId: UUID) async throws -> BindingGuard {
        let model: BindingGuardModel? = try await BindingGuardModel.find(accountId, on: database)
        return BindingGuard(accountId: accountId, failures: model?.failures ?? 0, lockedUntil: model?.lockedUntil)
    }

    func save(_ guardState: BindingGuard) async throws {
        let existing: BindingGuardModel? = try await BindingGuardModel.find(guardState.accountId, on: database)
        let model = existing ?? BindingGuardModel()
        model.id = guardState.accountId
        model.failures = guardState.failures
        model.lockedUntil = guardState.lockedUntil
        try await model.save(on: database)
    }
}

struct FluentDeviceRepository: DeviceRepository {
    let database: any Database
    let locksRows: Bool

    func find(serial: String) async throws -> Device? {
        try await database.sql.raw("""
            SELECT \(unsafeRaw: Rows.device) WHERE d.serial = \(bind: serial)\(unsafeRaw: forUpdate(database, when: locksRows, of: "d"))
            """).first().map(Rows.device)
    }

    func onSite(_ siteId: UUID, authorizationOf installerId: UUID, page: PageRequest) async throws -> SiteDevices? {
        // From the site outwards, so that a site without devices (or none past the cursor) still answers its one row.
        let rows = try await database.sql.raw("""
            SELECT \(unsafeRaw: Rows.siteAndAuthorization), \(unsafeRaw: Rows.deviceListingColumns)
            FROM sites s LEFT JOIN site_authorizations a ON a.site_id = s.id AND a.installer_id = \(bind: installerId)
            LEFT JOIN devices d ON d.site_id = s.id\(try Keyset.after(page, key: "d.serial"))
            LEFT JOIN nodes n ON n.id = d.node_id
            WHERE s.id = \(bind: siteId)\(Keyset.order(page, key: "d.serial"))
            """).all()
        guard let first = rows.first else { return nil }
        let authorization = try first.decodeNil(column: "a_site_id") ? nil : try Rows.authorization(first, prefix: "a_")
        let devices = try rows.filter { try !$0.decodeNil(column: "serial") }.map(Rows.deviceListing)
        return SiteDevices(site: try Rows.site(first, prefix: "s_"), authorization: authorization,
                           devices: Page(reading: devices, limit: page.limit) { .key($0.serial) })
    }

    func onSites(_ siteIds: [UUID], perSite: Int) async throws -> [UUID: (devices: [DeviceListing], more: Bool)] {
        guard !siteIds.isEmpty else { return [:] }
        // Each site's first devices by serial, one more than shown, read site by site along the index on (site, serial):
        // a page of 20 sites reads its sites' own rows and keeps 11 of each, however many devices each site has.
        // Numbering every device of the sites with a window function (one query for both databases) cost over half of
        // an owner's sites page on SQLite (20 sites of 100). PostgreSQL joins each site to its first devices (LATERAL);
        // SQLite, which has no LATERAL, reads each site in a query of its own, in one statement (UNION ALL).
        let query: SQLQueryString
        if try database.sql.dialect.name == "postgresql" {
            // The node is joined outside the LATERAL: joined inside, PostgreSQL read all of a site's devices, hashed them
            // with the nodes and sorted them to keep 11; outside, each site is an index scan that stops at 11.
            query = """
                SELECT \(unsafeRaw: Rows.deviceListingColumns) FROM unnest(\(bind: siteIds)::uuid[]) AS site(id) CROSS JOIN LATERAL \
                (SELECT serial, model, device_type, firmware, site_id, online, last_seen_at, node_id FROM devices WHERE site_id = site.id \
                ORDER BY serial LIMIT \(literal: perSite + 1)) d \
                LEFT JOIN nodes n ON n.id = d.node_id ORDER BY d.site_id, d.serial
                """
        } else {
            query = siteIds.enumerated().map { index, siteId -> SQLQueryString in
                "SELECT * FROM (SELECT \(unsafeRaw: Rows.deviceListingColumns) \(unsafeRaw: Rows.deviceFrom) WHERE d.site_id = \(bind: siteId) "
                    + "ORDER BY d.serial LIMIT \(literal: perSite + 1)) \(ident: "site\(index)")"
            }.joined(separator: " UNION ALL ") + " ORDER BY site_id, serial"
        }
        let rows = try await database.sql.raw(query).all()
        var bySite: [UUID: (devices: [DeviceListing], more: Bool)] = [:]
        for row in rows {
            let device = try Rows.deviceListing(row)
            guard let siteId = device.siteId else { continue }
            if bySite[siteId, default: ([], false)].devices.count == perSite {
                bySite[siteId]?.more = true
            } else {
                bySite[siteId, default: ([], false)].devices.append(device)
            }
        }
        return bySite
    }

    func save(_ device: Device) async throws {
        // One upsert, where FluentKit's model read the row and then wrote it: a channel's handshake saves its device.
        let lanAddresses = device.lanAddresses.isEmpty
            ? nil : String(decoding: try JSONEncoder().encode(device.lanAddresses), as: UTF8.self)
        try await database.sql.raw("""
            INSERT INTO devices (serial, model, device_type, firmware, site_id, online, last_seen_at, signing_key, agreement_key, \
            certificate_chain, lan_addresses, connection_id, channel_address, keys_pinned, node_id)
            VALUES (\(bind: device.serial), \(bind: device.model), \(bind: device.deviceType.rawValue), \(bind: device.firmware), \
            \(bind: device.siteId), \(bind: device.online), \(bind: device.lastSeenAt), \(bind: device.identity?.signingKey), \
            \(bind: device.identity?.agreementKey), \(bind: device.identity?.certificateChain), \(bind: lanAddresses), \
            \(bind: device.connectionId), \(bind: device.channelAddress), \(bind: device.keysPinned), \(bind: device.nodeId))
            ON CONFLICT (serial) DO UPDATE SET model = excluded.model, device_type = excluded.device_type, \
            firmware = excluded.firmware, site_id = excluded.site_id, online = excluded.online, last_seen_at = excluded.last_seen_at, \
            signing_key = excluded.signing_key, agreement_key = excluded.agreement_key, \
            certificate_chain = excluded.certificate_chain, lan_addresses = excluded.lan_addresses, \
            connection_id = excluded.connection_id, channel_address = excluded.channel_address, keys_pinned = excluded.keys_pinned, \
            node_id = excluded.node_id
            """).run()
    }

    func nodeHeard(_ node: String, at now: Date) async throws {
        try await database.sql.raw("""
            INSERT INTO nodes (id, last_seen_at) VALUES (\(bind: node), \(bind: now))
            ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at
            """).run()
    }

    func markOffline(serial: String, connectionId: UUID) async throws {
        try await database.sql.raw("""
            UPDATE devices SET online = \(bind: false) WHERE serial = \(bind: serial) AND connection_id = \(bind: connectionId)
            """).run()
    }

    func markOffline(silentSince cutoff: Date) async throws {
        let sql = try database.sql
        // The devices of silent nodes, found through the index by node, and those written before presence was by node
        // (no node). A node writes its row as it starts (its heartbeat's first round), so a device names a node with a
        // row; a reader goes by the device's own time where it does not (`Rows.deviceFrom`). This looked at every
        // online device each sweep: a tenth of an idle node's CPU at 15,000 channels (perf, issue 13).
        try await sql.raw("""
            UPDATE devices SET online = \(bind: false) WHERE online = \(bind: true)
            AND (node_id IN (SELECT id FROM nodes WHERE last_seen_at < \(bind: cutoff))
                OR (node_id IS NULL AND last_seen_at < \(bind: cutoff)))
            """).run()
        // Nodes gone for a day are forgotten: the statement above has written their devices offline.
        try await sql.raw("DELETE FROM nodes WHERE last_seen_at < \(bind: cutoff - 86_400)").run()
    }
}
