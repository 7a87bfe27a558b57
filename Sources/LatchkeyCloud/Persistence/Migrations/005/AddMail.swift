import FluentKit
import SQLKit

/// The language each account's e-mails are written in; accounts made before it read English.
struct AddAccountLanguage: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema("accounts").field("language", .string, .required, .sql(.default("en"))).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("accounts").deleteField("language").update()
    }
}

/// E-mails waiting to be sent. Times are Unix seconds, compared in SQL the same way on SQLite and PostgreSQL.
struct CreateMailQueue: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema("mail_queue")
            .field("id", .string, .identifier(auto: false))
            .field("recipient", .string, .required)
            .field("language", .string, .required)
            // The `ResetMail` as JSON: facts only, rendered when sent.
            .field("content", .string, .required)
            // pending or failed; a sent mail leaves the table.
            .field("status", .string, .required)
            .field("attempts", .int64, .required)
            .field("queued_at", .int64, .required)
            .field("next_attempt_at", .int64, .required)
            // Until then one node holds the mail; a node that dies holding it lets it go when this passes.
            .field("lease_until", .int64, .required)
            .field("last_error", .string)
            .create()
        if let sql = database as? any SQLDatabase {
            try await sql.create(index: "mail_queue_due").on("mail_queue").column("status").column("next_attempt_at").run()
        }
    }

    func revert(on database: any Database) async throws {
        try await database.schema("mail_queue").delete()
    }
}
