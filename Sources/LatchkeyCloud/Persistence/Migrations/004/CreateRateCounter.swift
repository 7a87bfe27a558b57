import FluentKit

/// Attempts counted per key and time window, in the database so that every node sharing it counts together.
struct CreateRateCounter: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema("rate_counters")
            .field("key", .string, .required)
            .field("bucket", .int64, .required)
            .field("count", .int64, .required)
            // Unix seconds when the window closes: what purging goes by.
            .field("closes", .int64, .required)
            .unique(on: "key", "bucket")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("rate_counters").delete()
    }
}
