import FluentKit

/// The platform's private key leaves the database for a file of its own (`--signing-key-file`).
struct DropPlatformKey: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema("platform_keys").delete()
    }

    func revert(on database: any Database) async throws {
        try await CreatePlatformKey().prepare(on: database)
    }
}
