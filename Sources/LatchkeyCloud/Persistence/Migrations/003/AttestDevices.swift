import FluentKit

/// Devices are known by their manufacturer's certificate chain; the label code's hash and the per-device lockout go
/// (the device compares codes itself); the channel that holds the device and its LAN addresses are kept.
struct AttestDevices: AsyncMigration {
    private let removed: [(String, DatabaseSchema.DataType)] = [
        ("code_salt", .string), ("code_hash", .string), ("bind_failures", .int), ("bind_locked_until", .datetime),
    ]
    private let added: [(String, DatabaseSchema.DataType)] = [
        ("certificate_chain", .string), ("lan_addresses", .string), ("connection_id", .uuid), ("channel_address", .string),
    ]

    func prepare(on database: any Database) async throws {
        // One column a statement: SQLite alters one at a time.
        for (name, _) in removed { try await database.schema("devices").deleteField(.string(name)).update() }
        for (name, type) in added { try await database.schema("devices").field(.string(name), type).update() }
    }

    func revert(on database: any Database) async throws {
        for (name, _) in added.reversed() { try await database.schema("devices").deleteField(.string(name)).update() }
        for (name, type) in removed { try await database.schema("devices").field(.string(name), type).update() }
    }
}

/// Wrong label codes count against the account that typed them, so a stranger locks himself out, not the owner.
struct CreateBindingGuard: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema("binding_guards")
            .field("account_id", .uuid, .identifier(auto: false))
            .field("failures", .int, .required)
            .field("locked_until", .datetime)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("binding_guards").delete()
    }
}
