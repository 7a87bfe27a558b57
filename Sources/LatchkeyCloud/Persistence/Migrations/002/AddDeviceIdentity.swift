import FluentKit
import SQLKit

/// The keys a device proves on its channel, its label code's hash, and the binding guard.
struct AddDeviceIdentity: AsyncMigration {
    // One column a statement: SQLite adds columns one at a time.
    private let columns: [(String, DatabaseSchema.DataType, [DatabaseSchema.FieldConstraint])] = [
        ("signing_key", .string, []),
        ("agreement_key", .string, []),
        ("code_salt", .string, []),
        ("code_hash", .string, []),
        ("keys_pinned", .bool, [.required, .sql(.default(false))]),
        ("bind_failures", .int, [.required, .sql(.default(0))]),
        ("bind_locked_until", .datetime, []),
    ]

    func prepare(on database: any Database) async throws {
        for (name, type, constraints) in columns {
            try await database.schema("devices")
                .field(.definition(name: .key(.string(name)), dataType: type, constraints: constraints)).update()
        }
    }

    func revert(on database: any Database) async throws {
        for (name, _, _) in columns.reversed() {
            try await database.schema("devices").deleteField(.string(name)).update()
        }
    }
}
