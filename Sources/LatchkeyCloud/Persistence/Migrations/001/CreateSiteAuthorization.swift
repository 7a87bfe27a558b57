import FluentKit

struct CreateSiteAuthorization: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema("site_authorizations")
            .id()
            .field("site_id", .uuid, .required, .references("sites", "id", onDelete: .cascade))
            .field("installer_id", .uuid, .required, .references("accounts", "id", onDelete: .cascade))
            .field("permissions", .string, .required)
            .field("expires_at", .datetime)
            .field("created_at", .datetime, .required)
            .unique(on: "site_id", "installer_id")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("site_authorizations").delete()
    }
}
