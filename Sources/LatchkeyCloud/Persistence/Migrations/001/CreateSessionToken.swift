import FluentKit

struct CreateSessionToken: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema("session_tokens")
            .field("token_hash", .string, .identifier(auto: false))
            .field("account_id", .uuid, .required, .references("accounts", "id", onDelete: .cascade))
            .field("created_at", .datetime, .required)
            .field("expires_at", .datetime, .required)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("session_tokens").delete()
    }
}
