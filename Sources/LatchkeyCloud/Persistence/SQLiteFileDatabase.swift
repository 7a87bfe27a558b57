import FluentKit
import FluentSQL
import Foundation
import Logging
import NIOCore
import NIOPosix
import SQLKit
import SQLiteKit
import SQLiteNIO
import VaporCSQLite

/// A session's database on a SQLite file: its SQL, and FluentKit's model queries turned into SQL as FluentSQLiteDriver
/// turns them, run on a `FileConnection` of ours, where the session's task runs: a reader's, inside its read
/// transaction (`SQLiteReaders.withSnapshot`), or the writer's, inside its transaction (`SQLiteWriter.transaction`).
/// `base`, SQLiteNIO's database, only names the context and the version; schema changes are migrations, made on it.
struct SQLiteFileDatabase: FluentKit.Database, SQLDatabase {
    let base: any FluentKit.Database & SQLDatabase
    let connection: FileConnection
    /// The writer's: its session writes, inside the transaction the writer began.
    let inTransaction: Bool

    // MARK: FluentKit.Database

    var context: DatabaseContext { base.context }

    func execute(query: DatabaseQuery, onOutput: @escaping @Sendable (any DatabaseOutput) -> Void) -> EventLoopFuture<Void> {
        var sql = SQLQueryConverter(delegate: SQLiteFileConverter()).convert(query)
        // As FluentSQLiteDriver does: a create answers the identifiers the database made.
        if case .create = query.action, query.customIDKey != .some(.string("")) {
            sql = SQLList([sql, SQLReturning(.init((query.customIDKey ?? .id).description))], separator: SQLRaw(" "))
        }
        return future { try run(sql) { onOutput(FluentRowOutput(row: $0, schema: nil)) } }
    }

    func execute(schema: DatabaseSchema) -> EventLoopFuture<Void> {
        eventLoop.makeFailedFuture(SQLiteFileError(code: SQLITE_MISUSE, message: "schema changes are migrations, not sessions"))
    }

    func execute(enum: DatabaseEnum) -> EventLoopFuture<Void> { eventLoop.makeSucceededVoidFuture() }

    /// A session is inside its transaction already, the writer's or a read's (whose connection refuses writes): the
    /// closure runs on this database.
    func transaction<T>(_ closure: @escaping @Sendable (any FluentKit.Database) -> EventLoopFuture<T>) -> EventLoopFuture<T> {
        closure(self)
    }

    func withConnection<T>(_ closure: @escaping @Sendable (any FluentKit.Database) -> EventLoopFuture<T>) -> EventLoopFuture<T> {
        closure(self)
    }

    // MARK: SQLDatabase

    var logger: Logger { base.context.logger }
    var eventLoop: any EventLoop { MultiThreadedEventLoopGroup.currentEventLoop ?? base.context.eventLoop }
    var version: (any SQLDatabaseReportedVersion)? { base.version }
    // SQLiteKit's own, as the base database answers it (asking the base builds a database wrapper each time).
    var dialect: any SQLDialect { SQLiteDialect() }
    var queryLogLevel: Logger.Level? { nil }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) -> EventLoopFuture<Void> {
        future { try run(query, onRow) }
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        try run(query, onRow)
    }

    private func run(_ query: any SQLExpression, _ onRow: (any SQLRow) -> Void) throws {
        let (sql, binds) = serialize(query)
        // An identifier is bound as its text, as SQLiteKit's encoder binds it, written without `uuidString`.
        let values = try binds.map { bind in try (bind as? UUID).map { .text($0.storedText) } ?? FileConnection.encoder.encode(bind) }
        try connection.rows(sql, values, onRow)
    }

    /// The statement has run by the time the future is made: it only carries the outcome.
    private func future(_ work: () throws -> Void) -> EventLoopFuture<Void> {
        do {
            try work()
            return eventLoop.makeSucceededVoidFuture()
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
    }
}

/// FluentSQLiteDriver's column types, for the model queries a session makes (its own delegate is internal to it).
private struct SQLiteFileConverter: SQLConverterDelegate {
    func customDataType(_ dataType: DatabaseSchema.DataType) -> (any SQLExpression)? {
        switch dataType {
        case .string, .enum: SQLRaw("TEXT")
        case .datetime: SQLRaw("REAL")
        case .int64: SQLRaw("INTEGER")
        default: nil
        }
    }
}

/// A row as FluentKit's models read it, as FluentSQLiteDriver hands its rows over (its adapter is internal to it).
private struct FluentRowOutput: DatabaseOutput {
    let row: any SQLRow
    let schema: String?

    var description: String { String(describing: row) }

    private func column(_ key: FieldKey) -> String {
        (schema.map { .prefix(.prefix(.string($0), "_"), key) } ?? key).description
    }

    func schema(_ schema: String) -> any DatabaseOutput { FluentRowOutput(row: row, schema: schema) }
    func contains(_ key: FieldKey) -> Bool { row.contains(column: column(key)) }
    func decodeNil(_ key: FieldKey) throws -> Bool { try row.decodeNil(column: column(key)) }
    func decode<T: Decodable>(_ key: FieldKey, as type: T.Type) throws -> T { try row.decode(column: column(key), as: T.self) }
}
