import AsyncKit
import FluentKit
import Foundation
import LatchkeyProtocol
import NIOPosix
import PostgresNIO
import SQLKit
import SQLiteNIO

/// The store on FluentKit: SQLite or PostgreSQL, whichever `Databases` was opened with.
///
/// On PostgreSQL, a request or device read inside a transaction is locked (`SELECT … FOR UPDATE`) until it commits,
/// so two nodes changing the same one at once take turns instead of losing a change; the invariants that span rows
/// (one open request per device, single-use nonces, unique e-mails) are unique indexes. A transaction the database
/// aborts as a deadlock is run again. SQLite runs transactions one after another anyway (on a file, `SQLiteWriter`'s).
struct FluentStore: LatchkeyStore {
    let database: any Database
    /// On a SQLite file, the connections sessions run on: reads on `SQLiteReaders`', transactions on `SQLiteWriter`'s
    /// (each session's `SQLiteFileDatabase`); `base` is SQLiteNIO's database. Nil: `database`'s own transactions.
    private let file: (readers: SQLiteReaders, writer: SQLiteWriter, base: any Database & SQLDatabase)?
    /// What reads run on elsewhere: on PostgreSQL, `PostgresReadingDatabase`; `database` otherwise.
    private let reading: any Database
    static let attempts = 5

    init(database: any Database, readers: SQLiteReaders? = nil, writer: SQLiteWriter? = nil) {
        self.database = database
        if let readers, let writer, let base = database as? any Database & SQLDatabase {
            file = (readers, writer, base)
        } else {
            file = nil
        }
        reading = PostgresReadingDatabase(database) ?? database
    }

    /// The store of a service's database, with the connections it keeps for reads and writes.
    init(_ service: DatabaseService) {
        self.init(database: service.database, readers: service.readers, writer: service.writer)
    }

    func transaction<T: Sendable>(_ work: @escaping @Sendable (any StoreSession) async throws -> T) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await once(work)
            } catch let error as PSQLError where attempt < Self.attempts && Self.isConflict(error) {
                // Exponential backoff with jitter, so colliding transactions stop colliding.
                let ceiling = min(2 << attempt, 200)
                try await Task.sleep(for: .milliseconds(Int.random(in: 1...ceiling)))
                attempt += 1
            }
        }
    }

    private func once<T: Sendable>(_ work: @escaping @Sendable (any StoreSession) async throws -> T) async throws -> T {
        if let (_, writer, base) = file {
            return try await writer.transaction { connection in
                try await work(FluentSession(database: SQLiteFileDatabase(base: base, connection: connection, inTransaction: true),
                                             locksRows: true))
            }
        }
        guard database is any PostgresDatabase else {
            return try await database.transaction { try await work(FluentSession(database: $0, locksRows: true)) }
        }
        // FluentKit's own transaction would send its statements, the rollback included, into a connection PostgreSQL
        // has ended, and wait for an answer that never comes (`TransactionConnection`).
        return try await database.withConnection { lent in
            guard let held = try await TransactionConnection.holding(lent) else { throw ConnectionClosedError() }
            try await held.raw("BEGIN").run()
            do {
                let result = try await work(FluentSession(database: held, locksRows: true))
                try await held.raw("COMMIT").run()
                return result
            } catch {
                // A closed connection has no transaction left to roll back: PostgreSQL ended it with the connection.
                if !held.connection.isClosed { try? await held.raw("ROLLBACK").run() }
                throw error
            }
        }
    }

    /// serialization_failure and deadlock_detected: the transaction did nothing and may simply run again.
    private static func isConflict(_ error: PSQLError) -> Bool {
        ["40001", "40P01"].contains(error.serverInfo?[.sqlState] ?? "")
    }

    func read<T: Sendable>(_ work: @escaping @Sendable (any StoreSession) async throws -> T) async throws -> T {
        // Reads change nothing, so they lock nothing.
        if let (readers, _, base) = file {
            return try await readers.withSnapshot { connection in
                try await work(FluentSession(database: SQLiteFileDatabase(base: base, connection: connection, inTransaction: false),
                                             locksRows: false))
            }
        }
        return try await work(FluentSession(database: reading, locksRows: false))
    }
}

struct FluentSession: StoreSession {
    let database: any Database
    /// Inside a transaction: rows read to be changed are locked until commit.
    let locksRows: Bool

    var accounts: any AccountRepository { FluentAccountRepository(database: database) }
    var sites: any SiteRepository { FluentSiteRepository(database: database) }
    var devices: any DeviceRepository { FluentDeviceRepository(database: database, locksRows: locksRows) }
    var bindingGuards: any BindingGuardRepository { FluentBindingGuards(database: database) }
    var rateCounters: any RateCounterRepository { SQLRateCounters(database: database) }
    var resetRequests: any ResetRequestRepository { FluentResetRequestRepository(database: database, locksRows: locksRows) }
    var notifications: any NotificationRepository { FluentNotificationRepository(database: database) }
    var audit: any AuditLog { FluentAuditLog(database: database) }
    var mailQueue: any MailQueue { SQLMailQueue(database: database) }
}

/// Runs a write and turns a unique-constraint failure into the domain's own refusal.
func insertChecked(_ conflict: LatchkeyError, _ write: () async throws -> Void) async throws {
    do {
        try await write()
    } catch let error as any DatabaseError where error.isConstraintFailure {
        throw conflict
    }
}

/// ` FOR UPDATE` on PostgreSQL inside a transaction, so the row read stays locked until it commits; nothing otherwise.
/// `alias`: the table to lock when the query joins others (an outer join's nullable side cannot be locked).
func forUpdate(_ database: any Database, when locksRows: Bool, of alias: String? = nil) -> String {
    guard locksRows, let sql = database as? any SQLDatabase, sql.dialect.name == "postgresql" else { return "" }
    return alias.map { " FOR UPDATE OF \($0)" } ?? " FOR UPDATE"
}

/// Reads a stored enum value, failing loudly if the database holds something this version does not know.
func decodeStored<E: WireEnum>(_ type: E.Type, _ raw: String) throws -> E {
    guard let value = E(rawValue: raw) else { throw StoredDataError(what: "\(E.self)", value: raw) }
    return value
}

/// A row this version cannot read: our failure (a 500), never the caller's.
struct StoredDataError: Error, CustomStringConvertible {
    let what: String
    let value: String
    var description: String { "The database holds an unknown \(what) '\(value)'." }
}

/// Whether an error means the database is not reachable at all (down, dropped, refusing connections), which the
/// service answers 503 rather than 500: nothing is wrong with the request or with us, only with where data lives.
enum DatabaseReachability {
    static func isUnreachable(_ error: any Error) -> Bool {
        switch error {
        case let error as PSQLError:
            if [.connectionError, .serverClosedConnection, .clientClosedConnection, .poolClosed, .uncleanShutdown].contains(error.code) {
                return true
            }
            // 08: connection exceptions; 57P: operator intervention (shutdown, terminated); 3D000: no such database;
            // 53300: too many connections.
            let state = error.serverInfo?[.sqlState] ?? ""
            return state.hasPrefix("08") || state.hasPrefix("57P") || state == "3D000" || state == "53300"
        case is ConnectionPoolTimeoutError, is ConnectionPoolError, is NIOConnectionError, is ConnectionClosedError:
            return true
        case let error as SQLiteFileError:
            return error.isUnreachable
        case let error as SQLiteError:
            return [.cantOpen, .ioError, .full, .busy, .locked, .readOnly, .notADatabase].contains(error.reason)
        default:
            return false
        }
    }
}
