import FluentKit
import SQLKit

struct CreateDevice: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema("devices")
            .field("serial", .string, .identifier(auto: false))
            .field("model", .string, .required)
            .field("device_type", .string, .required)
            .field("firmware", .string, .required)
            .field("site_id", .uuid, .references("sites", "id", onDelete: .setNull))
            .field("online", .bool, .required)
            .field("last_seen_at", .datetime)
            .create()
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.raw("CREATE INDEX devices_by_site ON devices (site_id)").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("devices").delete()
    }
}
