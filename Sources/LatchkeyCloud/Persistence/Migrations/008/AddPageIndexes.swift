import FluentKit
import SQLKit

/// Lists are read a page at a time in their order (issue 13: pagination), each along an index in that order, so a
/// page costs its own rows: a site's devices by serial (replacing the index on the site alone), an installer's sites
/// by when the authorization was given (replacing the index on the installer alone). The other lists' orders were
/// indexed already (sites by owner and time, requests by owner or installer and time, notifications by account and
/// time).
struct AddPageIndexes: AsyncMigration {
    func prepare(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.create(index: "devices_on_site_by_serial").on("devices").column("site_id").column("serial").run()
        try await sql.drop(index: "devices_by_site").run()
        try await sql.create(index: "site_authorizations_by_installer_time").on("site_authorizations")
            .column("installer_id").column("created_at").column("site_id").run()
        try await sql.drop(index: "site_authorizations_by_installer").run()
    }

    func revert(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.create(index: "site_authorizations_by_installer").on("site_authorizations").column("installer_id").run()
        try await sql.drop(index: "site_authorizations_by_installer_time").run()
        try await sql.create(index: "devices_by_site").on("devices").column("site_id").run()
        try await sql.drop(index: "devices_on_site_by_serial").run()
    }
}
