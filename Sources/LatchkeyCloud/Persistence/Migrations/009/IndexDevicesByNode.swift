import FluentKit
import SQLKit

/// The devices each node holds, by node and whether online: the sweep that writes offline the devices of a node gone
/// silent finds them through it instead of looking at every online device every 10 s. With a million devices, 100,000 of
/// them online, that sweep took 80 ms holding SQLite's write lock; through this index, 1 ms (issue 13).
struct IndexDevicesByNode: AsyncMigration {
    func prepare(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.create(index: "devices_by_node").on("devices").column("node_id").column("online").run()
    }

    func revert(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.drop(index: "devices_by_node").run()
    }
}
