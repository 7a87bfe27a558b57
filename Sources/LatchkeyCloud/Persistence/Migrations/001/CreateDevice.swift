import FluentKit

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
    }

    func revert(on database: any Database) async throws {
        try await database.schema("devices").delete()
    }
}
