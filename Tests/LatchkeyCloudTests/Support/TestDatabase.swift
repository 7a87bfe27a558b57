import FluentKit
import FluentPostgresDriver
import Foundation
import LatchkeyCloud
import Logging
import NIOPosix
import SQLKit

/// A database of the test's own: a SQLite file in a folder of its own, as `latchkey serve` keeps it (write-ahead log,
/// reads on their own connections), or — when `DATABASE_URL` is set — a fresh PostgreSQL database created for the test
/// and dropped after it, so tests stay isolated and may run in parallel.
enum TestDatabase {
    static var postgresURL: String? {
        ProcessInfo.processInfo.environment["DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    static func with<T>(_ body: (DatabaseLocation) async throws -> T) async throws -> T {
        guard let baseURL = postgresURL else {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("latchkey-test-\(UUID())")
            defer { try? FileManager.default.removeItem(at: folder) }
            return try await body(.sqliteFile(path: folder.appendingPathComponent("latchkey.sqlite").path))
        }
        let name = "latchkey_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        // PostgreSQL refuses a CREATE DATABASE while another one copies template1: several tests start at once, so retry.
        for attempt in 1...10 {
            do {
                try await admin(baseURL) { try await $0.raw("CREATE DATABASE \(unsafeRaw: name)").run() }
                break
            } catch where attempt < 10 {
                try await Task.sleep(for: .milliseconds(100 * attempt))
            }
        }
        do {
            let result = try await body(.postgres(url: replacingDatabase(in: baseURL, with: name)))
            try await admin(baseURL) { try await $0.raw("DROP DATABASE IF EXISTS \(unsafeRaw: name) WITH (FORCE)").run() }
            return result
        } catch {
            try? await admin(baseURL) { try await $0.raw("DROP DATABASE IF EXISTS \(unsafeRaw: name) WITH (FORCE)").run() }
            throw error
        }
    }

    /// Drops the test's PostgreSQL database under the platform's feet: what a database that went away looks like.
    static func dropWhileInUse(_ database: any Database) async throws {
        guard let baseURL = postgresURL, let sql = database as? any SQLDatabase else { return }
        let name = try await sql.raw("SELECT current_database() AS name").first()!.decode(column: "name", as: String.self)
        try await admin(baseURL) { try await $0.raw("DROP DATABASE IF EXISTS \(unsafeRaw: name) WITH (FORCE)").run() }
    }

    private static func admin(_ url: String, _ work: (any SQLDatabase) async throws -> Void) async throws {
        let databases = Databases(threadPool: .singleton, on: MultiThreadedEventLoopGroup.singleton)
        databases.use(.postgres(configuration: try SQLPostgresConfiguration(url: url)), as: .psql)
        let sql = databases.database(logger: Logger(label: "test-admin"), on: databases.eventLoopGroup.any()) as! any SQLDatabase
        do {
            try await work(sql)
        } catch {
            await databases.shutdownAsync()
            throw error
        }
        await databases.shutdownAsync()
    }

    private static func replacingDatabase(in url: String, with name: String) -> String {
        var components = URLComponents(string: url)!
        components.path = "/" + name
        return components.string!
    }
}
