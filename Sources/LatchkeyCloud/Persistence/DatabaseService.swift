import FluentKit
import FluentPostgresDriver
import FluentSQLiteDriver
import Foundation
import Logging
import SQLKit
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Where the service keeps its data.
public enum DatabaseLocation: Sendable, Equatable {
    /// A fresh database that lives as long as the process: for tests.
    case sqliteInMemory
    case sqliteFile(path: String)
    /// `postgres://user:password@host:port/database`.
    case postgres(url: String)

    /// What a log may say about it: never the URL, which can carry a password.
    var kind: String {
        switch self {
        case .sqliteInMemory: "sqlite (in memory)"
        case .sqliteFile(let path): "sqlite \(path)"
        case .postgres: "postgresql"
        }
    }
}

/// Opens FluentKit without Vapor, migrates on start, and closes the connections on graceful shutdown.
///
/// There is no hummingbird-fluent package here: this is the small glue it would have been.
public final class DatabaseService: Service, Sendable {
    public let databases: Databases
    /// On a SQLite file, the connections reads run on (`SQLiteReaders`); nil in memory and on PostgreSQL.
    let readers: SQLiteReaders?
    /// On a SQLite file, the connection transactions run on (`SQLiteWriter`), opened once the schema is up to date.
    let writer: SQLiteWriter?
    let logger: Logger

    public var database: any Database { Self.database(in: databases, logger: logger) }

    private static func database(in databases: Databases, logger: Logger) -> any Database {
        databases.database(logger: logger, on: databases.eventLoopGroup.any())!
    }

    /// Opens the database and brings its schema up to date.
    public init(location: DatabaseLocation, logger: Logger) async throws {
        // SQL and its binds are never logged, whatever the service's level: they carry token hashes and sealed payloads.
        var logger = logger
        logger.logLevel = max(logger.logLevel, .info)
        self.logger = logger
        if case .sqliteFile(let path) = location { readers = SQLiteReaders(path: path) } else { readers = nil }
        switch location {
        case .sqliteInMemory, .sqliteFile:
            // One event loop gives SQLite one connection: its writers are serialized instead of failing busy.
            databases = Databases(threadPool: .singleton, on: MultiThreadedEventLoopGroup.singleton.next())
            var storage: SQLiteConfiguration.Storage = .memory(identifier: UUID().uuidString)
            if case .sqliteFile(let path) = location {
                // The data folder and the database are the service user's alone.
                let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: folder.path)
                if !FileManager.default.fileExists(atPath: path) {
                    FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
                }
                try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
                storage = .file(path: path)
            }
            databases.use(.sqlite(SQLiteConfiguration(storage: storage, enableForeignKeys: true)), as: .sqlite)
        case .postgres(let url):
            databases = Databases(threadPool: .singleton, on: MultiThreadedEventLoopGroup.singleton)
            let configuration = try SQLPostgresConfiguration(url: url)
            databases.use(.postgres(configuration: configuration, maxConnectionsPerEventLoop: 8), as: .psql)
        }
        do {
            if case .sqliteFile = location {
                // Write-ahead log: a commit is one fsync of the log instead of the rollback journal's and the file's
                // (synchronous stays FULL, so a commit survives a power cut too); measured, the journal's fsyncs were a
                // tenth of the server's time connecting thousands of devices (issue 13). The mode stays with the file.
                try await Self.database(in: databases, logger: logger).sql.raw("PRAGMA journal_mode=WAL").run()
            }
            try await Self.migrate(location, databases: databases, logger: logger)
            if case .sqliteFile(let path) = location { writer = try SQLiteWriter(path: path) } else { writer = nil }
        } catch {
            await databases.shutdownAsync()
            throw error
        }
    }

    /// Brings the schema up to date and says so in one line (FluentKit's own two lines per migration stay quiet).
    private static func migrate(_ location: DatabaseLocation, databases: Databases, logger: Logger) async throws {
        let migrations = Migrations()
        migrations.add(LatchkeyMigrations.all)
        var quiet = logger
        quiet.logLevel = .warning
        let migrator = Migrator(databases: databases, migrations: migrations, logger: quiet, on: databases.eventLoopGroup.any())
        try await migrator.setupIfNeeded().get()
        let pending = try await migrator.previewPrepareBatch().get()
        try await migrator.prepareBatch().get()
        logger.info("Database schema up to date", metadata: [
            "database": "\(location.kind)", "migrations.applied.now": "\(pending.count)", "migrations.total": "\(LatchkeyMigrations.all.count)",
        ])
    }

    public func run() async throws {
        try? await gracefulShutdown()
        await close()
    }

    func close() async {
        readers?.close()
        await writer?.close()
        await databases.shutdownAsync()
    }
}
