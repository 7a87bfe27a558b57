import FluentKit
import Foundation
import Logging
import NIOCore
import PostgresKit
import PostgresNIO
import SQLKit

/// A session's SQL on PostgreSQL, run by PostgresNIO on a connection and read back cell by cell by concrete type.
///
/// Measured with `perf` on the hot reads (issue 13's note), PostgresKit was 16 % of the server's CPU, nearly all of it
/// decoding cells: each goes through `PostgresDataTranslation`, which first writes the cell's coding path as text, then
/// asks the type for its protocols, then decodes through generic metadata (4 % with this). The statements, the binds
/// and the wire are unchanged; only the decoding of the column types our tables hold (text, identifiers, times, flags,
/// numbers) is direct, as `ReadRow` does on SQLite. Anything else goes the way PostgresKit goes. SQL and binds are
/// never logged: they carry token hashes and sealed payloads.
protocol PostgresStatementDatabase: FluentKit.Database, SQLDatabase {
    /// Fluent's database: model queries, its context and logger.
    var base: any FluentKit.Database & SQLDatabase { get }
    /// Runs `statement` on the connection this database's statements go to.
    func onConnection(_ statement: @escaping @Sendable (PostgresConnection) -> EventLoopFuture<Void>) -> EventLoopFuture<Void>
}

extension PostgresStatementDatabase {
    var logger: Logger { base.context.logger }
    var eventLoop: any EventLoop { base.context.eventLoop }
    var version: (any SQLDatabaseReportedVersion)? { base.version }
    var dialect: any SQLDialect { PostgresDialect() }
    var queryLogLevel: Logger.Level? { nil }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) -> EventLoopFuture<Void> {
        let (sql, binds) = serialize(query)
        let bindings: PostgresBindings?
        do {
            bindings = try PostgresBindings.encoding(binds)
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
        // A value PostgresNIO cannot bind itself (JSON, say): PostgresKit runs the statement, on the connection held here
        // (the pool's database would have taken a second connection while this one waited).
        guard let bindings else { return onConnection { $0.sql(queryLogLevel: nil).execute(sql: query, onRow) } }
        let logger = logger
        return onConnection { connection in
            connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger) { onRow(PostgresRead(row: $0)) }.map { _ in }
        }
    }
}

/// The reads outside a transaction: each statement on a connection from the pool, as FluentKit's own would be.
struct PostgresReadingDatabase: PostgresStatementDatabase {
    let base: any FluentKit.Database & SQLDatabase
    let pool: any PostgresDatabase

    init?(_ database: any FluentKit.Database) {
        guard let base = database as? any FluentKit.Database & SQLDatabase, let pool = database as? any PostgresDatabase else { return nil }
        self.base = base
        self.pool = pool
    }

    func onConnection(_ statement: @escaping @Sendable (PostgresConnection) -> EventLoopFuture<Void>) -> EventLoopFuture<Void> {
        pool.withConnection(statement)
    }

    var context: DatabaseContext { base.context }
    var inTransaction: Bool { base.inTransaction }

    func execute(query: DatabaseQuery, onOutput: @escaping @Sendable (any DatabaseOutput) -> Void) -> EventLoopFuture<Void> {
        base.execute(query: query, onOutput: onOutput)
    }

    func execute(schema: DatabaseSchema) -> EventLoopFuture<Void> { base.execute(schema: schema) }
    func execute(enum: DatabaseEnum) -> EventLoopFuture<Void> { base.execute(enum: `enum`) }

    func transaction<T>(_ closure: @escaping @Sendable (any FluentKit.Database) -> EventLoopFuture<T>) -> EventLoopFuture<T> {
        base.transaction(closure)
    }

    func withConnection<T>(_ closure: @escaping @Sendable (any FluentKit.Database) -> EventLoopFuture<T>) -> EventLoopFuture<T> {
        base.withConnection(closure)
    }
}

/// A row PostgresNIO read, decoded by concrete type where the column is one of ours.
struct PostgresRead: SQLRow {
    let row: PostgresRow
    let cells: PostgresRandomAccessRow

    init(row: PostgresRow) {
        self.row = row
        cells = row.makeRandomAccess()
    }

    var allColumns: [String] { cells.map(\.columnName) }
    func contains(column: String) -> Bool { cells.contains(column) }
    func decodeNil(column: String) throws -> Bool { !cells.contains(column) || cells[column].bytes == nil }

    func decode<D: Decodable>(column: String, as type: D.Type) throws -> D {
        guard cells.contains(column) else { throw MissingReadColumn(column: column) }
        let cell = cells[column]
        // PostgresKit reads a user-defined type (a Fluent enum) asked for as text as its name; ours has none.
        if !cell.dataType.isUserDefined {
            if D.self == String.self { return try cell.decode(String.self) as! D }
            if D.self == String?.self { return try cell.decode(String?.self) as! D }
            if D.self == UUID.self { return try cell.decode(UUID.self) as! D }
            if D.self == UUID?.self { return try cell.decode(UUID?.self) as! D }
            if D.self == Date.self { return try cell.decode(Date.self) as! D }
            if D.self == Date?.self { return try cell.decode(Date?.self) as! D }
            if D.self == Bool.self { return try cell.decode(Bool.self) as! D }
            if D.self == Bool?.self { return try cell.decode(Bool?.self) as! D }
            if D.self == Int.self { return try cell.decode(Int.self) as! D }
            if D.self == Int?.self { return try cell.decode(Int?.self) as! D }
        }
        return try row.sql().decode(column: column, as: D.self)
    }
}

extension PostgresBindings {
    /// The binds as PostgresKit encodes them (`PostgresDataTranslation`'s fast path); nil if one is not a value
    /// PostgresNIO encodes itself.
    static func encoding(_ binds: [any Encodable]) throws -> PostgresBindings? {
        var bindings = PostgresBindings(capacity: binds.count)
        for bind in binds {
            guard try append(bind, to: &bindings) else { return nil }
        }
        return bindings
    }

    private static func append<T: Encodable>(_ value: T, to bindings: inout PostgresBindings) throws -> Bool {
        // PostgresKit's own test for nothing (`value as Optional<Any> == nil`) is never true for a generic value: its
        // nothing goes down the Encoder path and comes out NULL. Asked of the optional itself, it is.
        if let optional = value as? any OptionalBind, optional.isNothing {
            bindings.appendNull()
        } else if let value = value as? any PostgresThrowingDynamicTypeEncodable {
            try bindings.append(value, context: .default)
        } else {
            return false
        }
        return true
    }
}

/// A bind that may be nothing: an optional, asked as a whole (a cast to anything else unwraps it first).
private protocol OptionalBind { var isNothing: Bool { get } }
extension Optional: OptionalBind { fileprivate var isNothing: Bool { self == nil } }
