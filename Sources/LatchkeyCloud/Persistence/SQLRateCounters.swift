import FluentKit
import Foundation
import SQLKit

/// Rate counters as one upsert each (`INSERT … ON CONFLICT DO UPDATE … RETURNING`), the same on SQLite and PostgreSQL.
struct SQLRateCounters: RateCounterRepository {
    let database: any Database

    func hit(key: String, bucket: Int64, closes: Int64) async throws -> Int {
        let row = try await database.sql.raw("""
            INSERT INTO rate_counters (key, bucket, count, closes) VALUES (\(bind: key), \(bind: bucket), 1, \(bind: closes))
            ON CONFLICT (key, bucket) DO UPDATE SET count = rate_counters.count + 1
            RETURNING count
            """).first()
        return Int(try row?.decode(column: "count", as: Int64.self) ?? 1)
    }

    func purge(closedBefore now: Int64) async throws {
        try await database.sql.raw("DELETE FROM rate_counters WHERE closes < \(bind: now)").run()
    }
}
