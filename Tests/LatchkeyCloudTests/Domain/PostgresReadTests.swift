import FluentKit
import Foundation
@testable import LatchkeyCloud
import Logging
import PostgresNIO
import SQLKit
import Testing

/// Reads on PostgreSQL decode the column types our tables hold themselves (`PostgresRead`); every value must read as
/// PostgresKit reads it, and what is not ours must still go PostgresKit's way.
@Suite("Reads on PostgreSQL", .enabled(if: TestDatabase.postgresURL != nil, "needs PostgreSQL (DATABASE_URL)"), .timeLimit(.minutes(2)))
struct PostgresReadTests {
    private func withReading(_ body: (PostgresReadingDatabase) async throws -> Void) async throws {
        try await TestDatabase.with { location in
            let service = try await DatabaseService(location: location, logger: Logger(label: "test"))
            do {
                try await body(try #require(PostgresReadingDatabase(service.database)))
            } catch {
                await service.close()
                throw error
            }
            await service.close()
        }
    }

    @Test func everyColumnTypeReadsAsPostgresKitReadsIt() async throws {
        try await withReading { database in
            let id = UUID()
            let at = Date(timeIntervalSince1970: 1_800_000_000.123456)
            let rows = try await database.raw("""
                SELECT 'Caffè ☕' AS text, NULL::text AS no_text, \(bind: id) AS id, NULL::uuid AS no_id, \(bind: at) AS at,
                    NULL::timestamptz AS no_at, true AS flag, NULL::bool AS no_flag, 42::bigint AS count, 7::int AS small,
                    NULL::bigint AS no_count, \(bind: Optional<String>.none) AS bound_nothing, \(bind: "bound") AS bound_text,
                    \(bind: 9) AS bound_number, \(bind: false) AS bound_flag
                """).all()
            let row = try #require(rows.first as? PostgresRead, "the read did not come back through PostgresRead")
            let kit = row.row.sql()
            func same<T: Decodable & Equatable>(_ column: String, _ type: T.Type, _ expected: T) throws {
                let ours = try row.decode(column: column, as: T.self)
                #expect(ours == (try kit.decode(column: column, as: T.self)), "\(column) as \(T.self)")
                #expect(ours == expected, "\(column) as \(T.self)")
            }
            try same("text", String.self, "Caffè ☕")
            try same("text", String?.self, "Caffè ☕")
            try same("no_text", String?.self, nil)
            try same("id", UUID.self, id)
            try same("id", UUID?.self, id)
            try same("no_id", UUID?.self, nil)
            try same("at", Date.self, Date(timeIntervalSince1970: 1_800_000_000.123456))
            try same("at", Date?.self, at)
            try same("no_at", Date?.self, nil)
            try same("flag", Bool.self, true)
            try same("no_flag", Bool?.self, nil)
            try same("count", Int.self, 42)
            try same("small", Int.self, 7)
            try same("no_count", Int?.self, nil)
            try same("bound_nothing", String?.self, nil)
            try same("bound_text", String.self, "bound")
            try same("bound_number", Int.self, 9)
            try same("bound_flag", Bool.self, false)
            #expect(try row.decodeNil(column: "no_text") && !row.decodeNil(column: "text"))
            #expect(throws: MissingReadColumn.self) { try row.decode(column: "absent", as: String.self) }
            // A type of no column of ours (a Double from numeric): PostgresKit's own reading.
            let numeric = try await database.raw("SELECT 2.5::numeric AS amount").first()
            #expect(try numeric?.decode(column: "amount", as: Double.self) == 2.5)
        }
    }

    /// A bind PostgresNIO cannot encode itself (a dictionary, which PostgresKit sends as JSON) runs on PostgresKit's path.
    @Test func aBindPostgresNIODoesNotEncodeGoesPostgresKitsWay() async throws {
        try await withReading { database in
            let row = try await database.raw("SELECT \(bind: ["room": "Magazzino"])::jsonb ->> 'room' AS room").first()
            #expect(try row?.decode(column: "room", as: String.self) == "Magazzino")
            let json: [any Encodable] = [["room": "Magazzino"]]
            let plain: [any Encodable] = ["text", UUID(), Optional<Int>.none, Date(), true, 3]
            #expect(try PostgresBindings.encoding(json) == nil)
            #expect(try PostgresBindings.encoding(plain)?.count == plain.count)
        }
    }
}
