import FluentKit
import SQLKit

/// Lists are read a page at a time in their order (issue 13: pagination). A site's devices are read by serial: an
/// index on (site, serial) hands a page over without sorting every device of the site first; it replaces the index on
/// the site alone. The other lists' orders are already indexed (sites by owner and time, requests by owner or
/// installer and time, notifications by account and time).
struct AddPageIndexes: AsyncMigration {
    func prepare(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.create(index: "devices_on_site_by_serial").on("devices").column("site_id").column("serial").run()
        try await sql.drop(index: "devices_by_site").run()
    }

    func revert(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.create(index: "devices_by_site").on("devices").column("site_id").run()
        try await sql.drop(index: "devices_on_site_by_serial").run()
    }
}
