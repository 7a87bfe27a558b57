import FluentKit

/// Presence by node: each node writes when it was last heard from (one row per node), and each device which node holds
/// its channel; a heartbeat no longer writes the device's row.
struct AddNodePresence: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema("nodes")
            .field("id", .string, .identifier(auto: false))
            .field("last_seen_at", .datetime, .required)
            .create()
        try await database.schema("devices").field("node_id", .string).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("devices").deleteField("node_id").update()
        try await database.schema("nodes").delete()
    }
}
