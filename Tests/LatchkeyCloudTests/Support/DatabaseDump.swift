import FluentKit
import Foundation
import SQLKit

/// Every value of every table as text, on SQLite or PostgreSQL: for checking what is never stored.
enum DatabaseDump {
    static func text(of database: any Database) async throws -> String {
        let sql = database as! any SQLDatabase
        let postgres = sql.dialect.name == "postgresql"
        let tables = try await sql.raw(
            postgres
                ? "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public'"
                : "SELECT name FROM sqlite_master WHERE type = 'table'"
        ).all().map { try $0.decode(column: "name", as: String.self) }
        var text = ""
        for table in tables {
            let columns = try await sql.raw(
                postgres
                    ? "SELECT column_name AS name FROM information_schema.columns WHERE table_name = \(bind: table)"
                    : "SELECT name FROM pragma_table_info(\(bind: table))"
            ).all().map { try $0.decode(column: "name", as: String.self) }
            for column in columns {
                let values = try await sql.raw("SELECT CAST(\(ident: column) AS TEXT) AS v FROM \(ident: table)").all()
                for row in values { text += (try row.decode(column: "v", as: String?.self) ?? "") + "\n" }
            }
        }
        return text
    }
}
