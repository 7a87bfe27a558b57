import Foundation
import Logging
import PostgresKit
import PostgresNIO

/// A database of the run's own on the PostgreSQL server given, dropped when the run ends: a run measures only what it
/// wrote. On a database kept between runs, each scale run added its million devices to the last one's, so a build
/// measured second read a database twice the size.
enum BenchPostgres {
    static func withDatabase(on url: String, _ body: (String) async throws -> Void) async throws {
        let name = "latchkey_bench_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
        try await administer(url, "CREATE DATABASE \(name)")
        let outcome: Result<Void, any Error>
        do {
            var components = try URLComponents(string: url).orThrow("not a PostgreSQL URL")
            components.path = "/" + name
            try await body(try components.string.orThrow("not a PostgreSQL URL"))
            outcome = .success(())
        } catch {
            outcome = .failure(error)
        }
        do {
            try await administer(url, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
        } catch {
            print("The benchmark's database \(name) could not be dropped: \(error)")
        }
        try outcome.get()
    }

    /// One statement on a connection of its own to the database `url` names.
    private static func administer(_ url: String, _ statement: String) async throws {
        let configuration = try SQLPostgresConfiguration(url: url).coreConfiguration
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: Logger(label: "latchkey-bench"))
        do {
            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: Logger(label: "latchkey-bench"))
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }
}

extension Optional {
    fileprivate func orThrow(_ description: String) throws -> Wrapped {
        guard let self else { throw BenchPostgresURLError(description: description) }
        return self
    }
}

private struct BenchPostgresURLError: Error, CustomStringConvertible {
    let description: String
}
