import FluentKit
import SQLKit

struct CreatePasswordResetRequest: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema("password_reset_requests")
            .id()
            .field("device_serial", .string, .required, .references("devices", "serial"))
            .field("site_id", .uuid, .required, .references("sites", "id"))
            .field("owner_id", .uuid, .required, .references("accounts", "id"))
            .field("installer_id", .uuid, .required, .references("accounts", "id"))
            .field("mode", .string, .required)
            .field("status", .string, .required)
            .field("created_at", .datetime, .required)
            .field("expires_at", .datetime, .required)
            .field("updated_at", .datetime, .required)
            .field("sealed_password", .string)
            .create()
        guard let sql = database as? any SQLDatabase else { return }
        // One open request per device, held by the database itself so two installers racing cannot both win.
        try await sql.raw("""
            CREATE UNIQUE INDEX password_reset_requests_one_open_per_device
            ON password_reset_requests (device_serial) WHERE status IN ('pending', 'approved')
            """).run()
        try await sql.raw("CREATE INDEX password_reset_requests_by_owner ON password_reset_requests (owner_id, created_at)").run()
        try await sql.raw("CREATE INDEX password_reset_requests_by_installer ON password_reset_requests (installer_id, created_at)").run()
        try await sql.raw("CREATE INDEX password_reset_requests_by_expiry ON password_reset_requests (status, expires_at)").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("password_reset_requests").delete()
    }
}
