import FluentKit

struct CreatePlatformKey: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema("platform_keys")
            .field("name", .string, .identifier(auto: false))
            .field("private_key", .string, .required)
            .field("created_at", .datetime, .required)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("platform_keys").delete()
    }
}
