import FluentKit

/// Each device nonce spent on a grant, once: a proximity proof cannot be replayed, and a receipt must name one.
struct CreateResetGrant: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema("reset_grants")
            .field("nonce", .string, .identifier(auto: false))
            .field("request_id", .uuid, .required, .references("password_reset_requests", "id", onDelete: .cascade))
            .field("device_serial", .string, .required)
            .field("granted_at", .datetime, .required)
            .create()
        try await database.schema("password_reset_requests").field("completed_at", .datetime).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("password_reset_requests").deleteField("completed_at").update()
        try await database.schema("reset_grants").delete()
    }
}
