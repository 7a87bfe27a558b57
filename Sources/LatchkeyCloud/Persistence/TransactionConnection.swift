import FluentKit
import Logging
import NIOCore
import PostgresNIO
import SQLKit

/// The one PostgreSQL connection a transaction holds, refusing a statement once that connection has closed.
///
/// PostgresNIO 1.33 drops a statement written to a connection that has already closed (its channel's handlers are
/// gone, and the statement's promise with them), so the caller would wait forever. Seen in CI: the node's heartbeat
/// waited so, which would have left the node's devices offline on every other node, and the node could not shut down.
/// A transaction holds its connection across awaits, so when PostgreSQL ends it (a restart, a failover) its next
/// statement is the one that would hang. The check runs on the connection's own event loop, where the channel closes,
/// so no statement slips in after it.
struct TransactionConnection: PostgresStatementDatabase {
    let base: any Database & SQLDatabase
    let connection: PostgresConnection

    /// The transaction's own connection, taken from the Fluent database a pool lent for it.
    static func holding(_ lent: any Database) async throws -> TransactionConnection? {
        guard let base = lent as? any Database & SQLDatabase, let postgres = lent as? any PostgresDatabase else { return nil }
        let connection = try await postgres.withConnection { $0.eventLoop.makeSucceededFuture($0) }.get()
        return TransactionConnection(base: base, connection: connection)
    }

    private func whileOpen<T>(_ statement: @escaping @Sendable () -> EventLoopFuture<T>) -> EventLoopFuture<T> {
        let connection = connection
        @Sendable func checked() -> EventLoopFuture<T> {
            connection.isClosed ? connection.eventLoop.makeFailedFuture(ConnectionClosedError()) : statement()
        }
        return connection.eventLoop.inEventLoop ? checked() : connection.eventLoop.flatSubmit(checked)
    }

    // MARK: Database

    var context: DatabaseContext { base.context }
    var inTransaction: Bool { true }

    func execute(query: DatabaseQuery, onOutput: @escaping @Sendable (any DatabaseOutput) -> Void) -> EventLoopFuture<Void> {
        whileOpen { [base] in base.execute(query: query, onOutput: onOutput) }
    }

    func execute(schema: DatabaseSchema) -> EventLoopFuture<Void> {
        whileOpen { [base] in base.execute(schema: schema) }
    }

    func execute(enum: DatabaseEnum) -> EventLoopFuture<Void> {
        whileOpen { [base] in base.execute(enum: `enum`) }
    }

    func transaction<T>(_ closure: @escaping @Sendable (any Database) -> EventLoopFuture<T>) -> EventLoopFuture<T> {
        closure(self)
    }

    func withConnection<T>(_ closure: @escaping @Sendable (any Database) -> EventLoopFuture<T>) -> EventLoopFuture<T> {
        closure(self)
    }

    // MARK: PostgresStatementDatabase

    func onConnection(_ statement: @escaping @Sendable (PostgresConnection) -> EventLoopFuture<Void>) -> EventLoopFuture<Void> {
        whileOpen { [connection] in statement(connection) }
    }
}

/// The connection a transaction held has closed under it; the transaction did not commit.
struct ConnectionClosedError: Error, CustomStringConvertible {
    var description: String { "The database connection closed during the transaction; nothing was committed." }
}
