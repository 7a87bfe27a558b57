import FluentKit
import SQLKit

/// The indexes the remaining lookups need once tables grow (issue 13: a million devices): an owner's sites, an installer's
/// authorizations, a site's history, and the purges of sessions and rate counters were full scans of their tables.
struct AddLookupIndexes: AsyncMigration {
    /// (name, table, columns)
    static let indexes: [(String, String, [String])] = [
        ("sites_by_owner", "sites", ["owner_id", "created_at"]),
        ("site_authorizations_by_installer", "site_authorizations", ["installer_id"]),
        ("audit_entries_by_site", "audit_entries", ["site_id", "sequence"]),
        ("session_tokens_by_expiry", "session_tokens", ["expires_at"]),
        ("rate_counters_by_close", "rate_counters", ["closes"]),
    ]

    func prepare(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase else { return }
        for (name, table, columns) in Self.indexes {
            var index = sql.create(index: name).on(table)
            for column in columns { index = index.column(column) }
            try await index.run()
        }
    }

    func revert(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase else { return }
        for (name, _, _) in Self.indexes.reversed() { try await sql.drop(index: name).run() }
    }
}
