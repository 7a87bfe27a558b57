import FluentKit

struct CreateSite: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema("sites")
            .id()
            .field("owner_id", .uuid, .required, .references("accounts", "id"))
            .field("name", .string, .required)
            .field("address", .string)
            .field("created_at", .datetime, .required)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("sites").delete()
    }
}
