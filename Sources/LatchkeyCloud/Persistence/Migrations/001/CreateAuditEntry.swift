import FluentKit
import SQLKit

struct CreateAuditEntry: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema("audit_entries")
            .field("sequence", .int, .identifier(auto: true))
            .field("at", .datetime, .required)
            .field("actor_id", .uuid)
            .field("site_id", .uuid)
            .field("device_serial", .string)
            .field("request_id", .uuid)
            .field("action", .string, .required)
            .field("outcome", .string, .required)
            .field("detail", .string)
            .create()
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.raw("CREATE INDEX audit_entries_by_device ON audit_entries (device_serial, at)").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("audit_entries").delete()
    }
}
