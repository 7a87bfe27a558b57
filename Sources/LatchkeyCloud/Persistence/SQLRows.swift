import FluentKit
import Foundation
import LatchkeyProtocol
import SQLKit

// The reads every signed-in screen makes, in plain SQL. FluentKit builds each query anew and reflects over a model's
// fields (Mirror, type lookups by mangled name) for every row: measured with `perf` on `GET /sites/{id}/devices`, that
// was most of the server's CPU per request (issue 13's note). Same tables, same column encodings as the models.

extension FluentKit.Database {
    /// The database as SQL: both drivers are; anything else is our failure.
    var sql: any SQLDatabase {
        get throws {
            guard let sql = self as? any SQLDatabase else { throw NotAnSQLDatabase() }
            return sql
        }
    }
}

/// The database is not an SQL one: our failure.
struct NotAnSQLDatabase: Error {}

/// Rows to domain values, one function per table; each query names the columns it reads.
enum Rows {
    /// `alias.column AS alias_column, …`: a table's columns in a join, decoded with `prefix: "alias_"`; or, `prefixed`
    /// false, `alias.column, …`, decoded under their own names.
    static func columns(_ list: String, of alias: String, prefixed: Bool = true) -> String {
        list.split(separator: ",").map { column in
            let name = column.trimmingCharacters(in: .whitespaces)
            return prefixed ? "\(alias).\(name) AS \(alias)_\(name)" : "\(alias).\(name)"
        }.joined(separator: ", ")
    }

    static let account = "id, email, name, role, language, password_hash, created_at"
    /// A request's two people, joined as `o` (owner) and `i` (installer), built once.
    static let owner = columns(account, of: "o")
    static let installer = columns(account, of: "i")
    static func account(_ row: any SQLRow, prefix: String = "") throws -> Account {
        Account(
            id: try row.decode(column: prefix + "id", as: UUID.self), email: try row.decode(column: prefix + "email", as: String.self),
            name: try row.decode(column: prefix + "name", as: String.self),
            role: try decodeStored(AccountRole.self, try row.decode(column: prefix + "role", as: String.self)),
            language: try decodeStored(Language.self, try row.decode(column: prefix + "language", as: String.self)),
            passwordHash: try row.decode(column: prefix + "password_hash", as: String.self),
            createdAt: try row.decode(column: prefix + "created_at", as: Date.self))
    }

    static let site = "id, owner_id, name, address, created_at"
    /// A site joined as `s`, built once.
    static let siteAsS = columns(site, of: "s")
    static func site(_ row: any SQLRow, prefix: String = "") throws -> Site {
        Site(id: try row.decode(column: prefix + "id", as: UUID.self), ownerId: try row.decode(column: prefix + "owner_id", as: UUID.self),
             name: try row.decode(column: prefix + "name", as: String.self), address: try row.decode(column: prefix + "address", as: String?.self),
             createdAt: try row.decode(column: prefix + "created_at", as: Date.self))
    }

    static let authorization = "site_id, installer_id, permissions, expires_at, created_at"
    /// An authorization joined as `a`, built once.
    static let authorizationAsA = columns(authorization, of: "a")
    /// A site (`s`) and an authorization (`a`) in one join, built once: the join is on every signed-in site read.
    static let siteAndAuthorization = siteAsS + ", " + authorizationAsA
    /// An authorization (`a`) and its installer's account (`i`), built once: the owner's site page lists them.
    static let authorizationAndInstaller = authorizationAsA + ", " + installer
    static func authorization(_ row: any SQLRow, prefix: String = "") throws -> SiteAuthorization {
        let permissions = try row.decode(column: prefix + "permissions", as: String.self).split(separator: ",")
            .map { try decodeStored(Permission.self, String($0)) }
        return SiteAuthorization(
            siteId: try row.decode(column: prefix + "site_id", as: UUID.self), installerId: try row.decode(column: prefix + "installer_id", as: UUID.self),
            permissions: Set(permissions), expiresAt: try row.decode(column: prefix + "expires_at", as: Date?.self),
            createdAt: try row.decode(column: prefix + "created_at", as: Date.self))
    }

    /// The columns and the `FROM` of a device read, with its node: `last_seen_at` is the node's last heartbeat when a node
    /// holds the channel (`SELECT \(Rows.device) WHERE d.… `).
    static let device = deviceColumns + " " + deviceFrom
    static let deviceColumns = """
        d.serial, d.model, d.device_type, d.firmware, d.site_id, d.online, COALESCE(n.last_seen_at, d.last_seen_at) AS last_seen_at, \
        d.signing_key, d.agreement_key, d.certificate_chain, d.lan_addresses, d.connection_id, d.channel_address, d.keys_pinned, \
        d.node_id
        """
    static let deviceFrom = "FROM devices d LEFT JOIN nodes n ON n.id = d.node_id"
    /// What a list shows of a device (`DeviceListing`), with `deviceFrom`.
    static let deviceListingColumns = """
        d.serial, d.model, d.device_type, d.firmware, d.site_id, d.online, COALESCE(n.last_seen_at, d.last_seen_at) AS last_seen_at
        """
    static func deviceListing(_ row: any SQLRow) throws -> DeviceListing {
        DeviceListing(
            serial: try row.decode(column: "serial", as: String.self), model: try row.decode(column: "model", as: String.self),
            deviceType: try decodeStored(DeviceType.self, try row.decode(column: "device_type", as: String.self)),
            firmware: try row.decode(column: "firmware", as: String.self), siteId: try row.decode(column: "site_id", as: UUID?.self),
            online: try row.decode(column: "online", as: Bool.self), lastSeenAt: try row.decode(column: "last_seen_at", as: Date?.self))
    }
    static func device(_ row: any SQLRow) throws -> Device {
        var identity: DeviceIdentity?
        if let signingKey = try row.decode(column: "signing_key", as: String?.self),
            let agreementKey = try row.decode(column: "agreement_key", as: String?.self)
        {
            identity = DeviceIdentity(signingKey: signingKey, agreementKey: agreementKey,
                                      certificateChain: try row.decode(column: "certificate_chain", as: String?.self))
        }
        let lanAddresses = try row.decode(column: "lan_addresses", as: String?.self).map(storedTexts) ?? []
        return Device(
            serial: try row.decode(column: "serial", as: String.self), model: try row.decode(column: "model", as: String.self),
            deviceType: try decodeStored(DeviceType.self, try row.decode(column: "device_type", as: String.self)),
            firmware: try row.decode(column: "firmware", as: String.self), siteId: try row.decode(column: "site_id", as: UUID?.self),
            online: try row.decode(column: "online", as: Bool.self), lastSeenAt: try row.decode(column: "last_seen_at", as: Date?.self),
            identity: identity, keysPinned: try row.decode(column: "keys_pinned", as: Bool.self), lanAddresses: lanAddresses,
            connectionId: try row.decode(column: "connection_id", as: UUID?.self),
            channelAddress: try row.decode(column: "channel_address", as: String?.self), nodeId: try row.decode(column: "node_id", as: String?.self))
    }

    /// A JSON array of texts as `JSONEncoder` stores one (a device's LAN addresses): split where it holds no escapes,
    /// which is what addresses are; decoded by `JSONDecoder` otherwise. A decoder made for every device row was half of
    /// reading a site's devices (measured: 3.5 % of the server's CPU listing them).
    static func storedTexts(_ json: String) throws -> [String] {
        let bytes = json.utf8
        if bytes.first == UInt8(ascii: "["), bytes.last == UInt8(ascii: "]"), !bytes.contains(UInt8(ascii: "\\")) {
            let inside = json.utf8.dropFirst().dropLast()
            if inside.isEmpty { return [] }
            var texts: [String] = []
            var plain = true
            for piece in inside.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
                // With no escapes, a text is a quote, anything but a quote or a control character, and a quote.
                guard piece.count >= 2, piece.first == UInt8(ascii: "\""), piece.last == UInt8(ascii: "\""),
                    !piece.dropFirst().dropLast().contains(where: { $0 == UInt8(ascii: "\"") || $0 < 0x20 })
                else { plain = false; break }
                texts.append(String(decoding: piece.dropFirst().dropLast(), as: UTF8.self))
            }
            if plain { return texts }
        }
        return try JSONDecoder().decode([String].self, from: Data(json.utf8))
    }

    static let request = """
        id, device_serial, site_id, owner_id, installer_id, mode, status, created_at, expires_at, updated_at, sealed_password, \
        completed_at
        """
    static func request(_ row: any SQLRow) throws -> PasswordResetRequest {
        PasswordResetRequest(
            id: try row.decode(column: "id", as: UUID.self), deviceSerial: try row.decode(column: "device_serial", as: String.self),
            siteId: try row.decode(column: "site_id", as: UUID.self), ownerId: try row.decode(column: "owner_id", as: UUID.self),
            installerId: try row.decode(column: "installer_id", as: UUID.self),
            mode: try decodeStored(ResetMode.self, try row.decode(column: "mode", as: String.self)),
            storedStatus: try decodeStored(ResetStatus.self, try row.decode(column: "status", as: String.self)),
            createdAt: try row.decode(column: "created_at", as: Date.self), expiresAt: try row.decode(column: "expires_at", as: Date.self),
            updatedAt: try row.decode(column: "updated_at", as: Date.self),
            sealedPassword: try row.decode(column: "sealed_password", as: String?.self),
            completedAt: try row.decode(column: "completed_at", as: Date?.self))
    }

    static let notification = "id, account_id, category, kind, title, body, request_id, created_at, read"
    static func notification(_ row: any SQLRow) throws -> AccountNotification {
        AccountNotification(
            id: try row.decode(column: "id", as: UUID.self), accountId: try row.decode(column: "account_id", as: UUID.self),
            category: try decodeStored(NotificationCategory.self, try row.decode(column: "category", as: String.self)),
            kind: try decodeStored(NotificationKind.self, try row.decode(column: "kind", as: String.self)),
            title: try row.decode(column: "title", as: String.self), body: try row.decode(column: "body", as: String.self),
            requestId: try row.decode(column: "request_id", as: UUID?.self), createdAt: try row.decode(column: "created_at", as: Date.self),
            read: try row.decode(column: "read", as: Bool.self))
    }
}

/// The end of a query that reads one page of a list in its order (keyset pagination): the condition that starts it
/// after its cursor, the order that condition follows, and one row more than the page holds (that one only says more
/// exist). In one place, so that the comparison and the order cannot disagree.
enum Keyset {
    /// `[ AND (time, id) > (…)] ORDER BY time, id LIMIT n` (`<` and descending for newest-first lists).
    static func page(_ page: PageRequest, time: String, id: String, newestFirst: Bool = false) throws(LatchkeyError) -> SQLQueryString {
        var query: SQLQueryString = ""
        if let cursor = page.after {
            guard case .time(let at, let last) = cursor else { throw mismatch }
            query += " AND (\(unsafeRaw: time), \(unsafeRaw: id)) \(unsafeRaw: newestFirst ? "<" : ">") (\(bind: at), \(bind: last))"
        }
        let direction = newestFirst ? " DESC" : ""
        return query + " ORDER BY \(unsafeRaw: time)\(unsafeRaw: direction), \(unsafeRaw: id)\(unsafeRaw: direction) LIMIT \(bind: page.limit + 1)"
    }

    /// `[ AND key > (…)] ORDER BY key LIMIT n`.
    static func page(_ page: PageRequest, key: String) throws(LatchkeyError) -> SQLQueryString {
        try after(page, key: key) + order(page, key: key)
    }

    /// `[ AND key > (…)]`: apart from its order where the condition belongs in a join rather than in `WHERE`.
    static func after(_ page: PageRequest, key: String) throws(LatchkeyError) -> SQLQueryString {
        guard let cursor = page.after else { return "" }
        guard case .key(let last) = cursor else { throw mismatch }
        return " AND \(unsafeRaw: key) > \(bind: last)"
    }

    /// ` ORDER BY key LIMIT n`.
    static func order(_ page: PageRequest, key: String) -> SQLQueryString {
        " ORDER BY \(unsafeRaw: key) LIMIT \(bind: page.limit + 1)"
    }

    private static var mismatch: LatchkeyError {
        .invalidRequest("cursor belongs to another list: start again without it, then follow the Link header's next page.")
    }
}
