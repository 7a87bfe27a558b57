import FluentKit
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SQLKit
import SQLiteKit
import SQLiteNIO
// SQLiteNIO's own build of SQLite, so the process holds one copy of the library: two copies opening one file would
// each drop the other's POSIX locks when they close a descriptor (sqlite.org/howtocorrupt.html, 2.2.1).
import VaporCSQLite

/// Reads on a SQLite file, run where the caller's task runs, on connections of their own with their statements kept.
///
/// Measured with `perf` on `GET /sites/{id}/devices` (issue 13's note): through SQLiteNIO, every statement was parsed
/// again (a prepare cost twice its step), ran on NIO's thread pool and came back row by row through futures, and every
/// read queued behind the one connection that also writes. In write-ahead-log mode readers never wait for the writer
/// and see the last commit, so a read session takes a read-only connection from here, runs its statements kept from
/// last time, and gives the connection back. The statements are short, indexed and paged, so running them on an event
/// loop costs it less than the trips to the thread pool did. Transactions run on `SQLiteWriter`'s connection; only
/// migrations use SQLiteNIO's.
final class SQLiteReaders: Sendable {
    private let path: String
    /// The most connections open at once. A read session holds its connection while it awaits, so as many sessions
    /// overlap as requests are under way: past this many, a session waits for a connection to be given back, rather
    /// than each opening one of its own (a file, its log, and the schema read anew) during a burst.
    private let limit: Int
    private let pool = NIOLockedValueBox(Pool())

    private struct Pool {
        var idle: [FileConnection] = []
        var open = 0
        var waiting = CircularBuffer<CheckedContinuation<Handout, Never>>()
        var closed = false

        /// What a session asking now is given; nil: it waits.
        mutating func handout(limit: Int) -> Handout? {
            if closed { return .closed }
            if let connection = idle.popLast() { return .connection(connection) }
            guard open < limit else { return nil }
            open += 1
            return .openOne
        }
    }

    /// What a session asking for a connection is given.
    private enum Handout {
        case connection(FileConnection)
        /// Room for one more: the session opens it.
        case openOne
        case closed
    }

    init(path: String, limit: Int = 32) {
        self.path = path
        self.limit = limit
    }

    /// Runs a read session on a connection no one else is using, inside one read transaction, then keeps the
    /// connection for the next read. Every statement of the session sees the same commit (the site page's devices and
    /// installers, read one after the other, could show a write half done), and the log's read lock is taken and given
    /// back once a session, not once a statement (each is an `fcntl`).
    func withSnapshot<T>(_ body: (FileConnection) async throws -> T) async throws -> T {
        // A read inside a read would hold one connection while it waited for another: with all of them held so, every
        // such read would wait for ever. Refused, loudly, where it is written.
        guard !Self.holdingOne else {
            throw SQLiteFileError(code: SQLITE_MISUSE, message: "a read started inside another read: pass the session on instead")
        }
        let connection = try await take()
        defer { giveBack(connection) }
        try connection.run("BEGIN")
        do {
            let result = try await Self.$holdingOne.withValue(true) { try await body(connection) }
            try connection.run("COMMIT")
            return result
        } catch {
            if connection.inTransaction { try? connection.run("ROLLBACK") }
            throw error
        }
    }

    /// Whether this task (or the task it was started from) is inside a read session.
    @TaskLocal private static var holdingOne = false

    private func take() async throws -> FileConnection {
        let handout: Handout
        if let now = pool.withLockedValue({ $0.handout(limit: limit) }) {
            handout = now
        } else {
            handout = await withCheckedContinuation { continuation in
                let now: Handout? = pool.withLockedValue { pool in
                    let now = pool.handout(limit: limit)
                    if now == nil { pool.waiting.append(continuation) }
                    return now
                }
                if let now { continuation.resume(returning: now) }
            }
        }
        switch handout {
        case .connection(let connection): return connection
        case .openOne: return try open()
        case .closed: throw SQLiteFileError(code: SQLITE_MISUSE, message: "the database is closed")
        }
    }

    /// Opens a connection the pool has counted already; if it cannot, the count is given back.
    private func open() throws -> FileConnection {
        do {
            return try FileConnection(path: path)
        } catch {
            forget()
            throw error
        }
    }

    /// To the next session waiting, or kept for the next read. One still inside a transaction is closed instead: kept
    /// so, it would hold its old snapshot, and the log could never be checkpointed past it.
    private func giveBack(_ connection: FileConnection) {
        guard !connection.inTransaction else {
            connection.close()
            return forget()
        }
        let (waiter, closed) = pool.withLockedValue { pool -> (CheckedContinuation<Handout, Never>?, Bool) in
            if pool.closed {
                pool.open -= 1
                return (nil, true)
            }
            if let waiter = pool.waiting.popFirst() { return (waiter, false) }
            pool.idle.append(connection)
            return (nil, false)
        }
        waiter?.resume(returning: .connection(connection))
        if closed { connection.close() }
    }

    /// A connection counted as open is gone: a session waiting may open one in its place.
    private func forget() {
        let waiter: CheckedContinuation<Handout, Never>? = pool.withLockedValue { pool in
            pool.open -= 1
            guard !pool.closed, let waiter = pool.waiting.popFirst() else { return nil }
            pool.open += 1
            return waiter
        }
        waiter?.resume(returning: .openOne)
    }

    /// Closes the connections kept; those in use are closed as they are given back, and sessions waiting are refused.
    func close() {
        let (idle, waiting) = pool.withLockedValue { pool in
            pool.closed = true
            pool.open -= pool.idle.count
            defer { pool.idle = []; pool.waiting = [] }
            return (pool.idle, pool.waiting)
        }
        for connection in idle { connection.close() }
        for waiter in waiting { waiter.resume(returning: .closed) }
    }
}

/// One SQLite connection and the statements it has prepared, used by one task at a time: a read takes it from
/// `SQLiteReaders` and gives it back, a transaction holds `SQLiteWriter`'s turn, so nothing else can reach it meanwhile.
final class FileConnection: @unchecked Sendable {
    private var handle: OpaquePointer?
    private var statements: [String: PreparedRead] = [:]
    /// Distinct statements kept; past it they are all finalized and kept anew (lists with `IN (…)` vary in length).
    static let statementsKept = 128

    /// `writes`: false opens the file read-only, so that a read cannot change anything, whatever SQL reaches it.
    init(path: String, writes: Bool = false) throws {
        let flags = (writes ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        let opened = sqlite_nio_sqlite3_open_v2(path, &handle, flags, nil)
        guard opened == SQLITE_OK else {
            let error = SQLiteFileError(code: opened, message: handle.map { String(cString: sqlite_nio_sqlite3_errmsg($0)) } ?? "cannot open")
            sqlite_nio_sqlite3_close(handle)
            throw error
        }
        // A checkpoint resetting the log can hold readers back for a moment, and the writer waits for a write lock
        // another connection holds: wait rather than fail.
        sqlite_nio_sqlite3_busy_timeout(handle, 5_000)
    }

    /// Inside a transaction (not in autocommit).
    var inTransaction: Bool { handle.map { sqlite_nio_sqlite3_get_autocommit($0) == 0 } ?? false }

    /// Runs a statement that answers no rows.
    func run(_ sql: String) throws {
        try rows(sql, []) { _ in }
    }

    /// Values to and from what SQLite stores, as SQLiteKit converts them, so that a value means the same on
    /// SQLiteNIO's connection (migrations) and on ours.
    static let encoder = SQLiteDataEncoder()
    static let decoder = SQLiteDataDecoder()

    /// Runs one statement, calling `onRow` for each row it returns.
    func rows(_ sql: String, _ binds: [SQLiteData], _ onRow: (any SQLRow) -> Void) throws {
        let statement = try prepared(sql)
        // Reset at once however the statement ends: a statement left stepped holds its read snapshot open, and the log
        // could then never be checkpointed. Its bindings are not cleared: each call binds every parameter again, and
        // clearing them marks a statement whose plan looked at a bound value (a LIMIT) to be parsed again (measured:
        // re-preparing was 12 % of the server's CPU listing a site's devices).
        defer { sqlite_nio_sqlite3_reset(statement.handle) }
        for (index, bind) in binds.enumerated() { try check(statement.bind(bind, at: Int32(index + 1))) }
        while true {
            let step = sqlite_nio_sqlite3_step(statement.handle)
            guard step == SQLITE_ROW else {
                try check(step == SQLITE_DONE ? SQLITE_OK : step)
                return
            }
            onRow(ReadRow(columns: statement.columns, values: try statement.values()))
        }
    }

    private func prepared(_ sql: String) throws -> PreparedRead {
        if let statement = statements[sql] { return statement }
        // Closed at shutdown, with a request still under way: refused, not handed to SQLite as a null connection.
        guard handle != nil else { throw SQLiteFileError(code: SQLITE_MISUSE, message: "the connection is closed") }
        if statements.count >= Self.statementsKept { finalizeAll() }
        var statement: OpaquePointer?
        try check(sqlite_nio_sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil))
        guard let statement else { throw SQLiteFileError(code: SQLITE_MISUSE, message: "an empty statement") }
        let prepared = PreparedRead(handle: statement)
        statements[sql] = prepared
        return prepared
    }

    private func check(_ code: Int32) throws {
        guard code == SQLITE_OK else {
            throw SQLiteFileError(code: code, message: String(cString: sqlite_nio_sqlite3_errmsg(handle)))
        }
    }

    private func finalizeAll() {
        for statement in statements.values { sqlite_nio_sqlite3_finalize(statement.handle) }
        statements = [:]
    }

    func close() {
        finalizeAll()
        sqlite_nio_sqlite3_close(handle)
        handle = nil
    }
}

/// A statement kept on its connection, with the names of the columns it returns.
private struct PreparedRead {
    let handle: OpaquePointer
    let columns: ReadColumns

    init(handle: OpaquePointer) {
        self.handle = handle
        columns = ReadColumns((0..<sqlite_nio_sqlite3_column_count(handle)).map { String(cString: sqlite_nio_sqlite3_column_name(handle, $0)) })
    }

    /// Binds as SQLiteNIO does, so a value means the same on either path.
    func bind(_ value: SQLiteData, at index: Int32) -> Int32 {
        switch value {
        case .blob(let bytes):
            bytes.withUnsafeReadableBytes { sqlite_nio_sqlite3_bind_blob64(handle, index, $0.baseAddress, UInt64($0.count), transient) }
        case .float(let number): sqlite_nio_sqlite3_bind_double(handle, index, number)
        case .integer(let number): sqlite_nio_sqlite3_bind_int64(handle, index, Int64(number))
        case .null: sqlite_nio_sqlite3_bind_null(handle, index)
        case .text(let text): sqlite_nio_sqlite3_bind_text64(handle, index, text, UInt64(text.utf8.count), transient, UInt8(SQLITE_UTF8))
        }
    }

    /// The current row's values, read as SQLiteNIO reads them.
    func values() throws -> [SQLiteData] {
        try (0..<Int32(columns.names.count)).map { column in
            switch sqlite_nio_sqlite3_column_type(handle, column) {
            case SQLITE_INTEGER: return .integer(Int(sqlite_nio_sqlite3_column_int64(handle, column)))
            case SQLITE_FLOAT: return .float(sqlite_nio_sqlite3_column_double(handle, column))
            case SQLITE_TEXT:
                guard let text = sqlite_nio_sqlite3_column_text(handle, column) else {
                    throw SQLiteFileError(code: SQLITE_NOMEM, message: "no text for column \(column)")
                }
                return .text(String(cString: text))
            case SQLITE_BLOB:
                let count = Int(sqlite_nio_sqlite3_column_bytes(handle, column))
                var buffer = ByteBufferAllocator().buffer(capacity: count)
                if let bytes = sqlite_nio_sqlite3_column_blob(handle, column) { buffer.writeBytes(UnsafeRawBufferPointer(start: bytes, count: count)) }
                return .blob(buffer)
            default: return .null
            }
        }
    }
}

/// SQLite's `SQLITE_TRANSIENT`: it copies a bound value before the call returns.
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// A statement's column names and where each is, shared by all the rows it returns.
final class ReadColumns: Sendable {
    let names: [String]
    let positions: [String: Int]

    init(_ names: [String]) {
        self.names = names
        positions = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
    }
}

/// What a NULL column reads as without a decoder: nothing.
private protocol NullableColumn { static var nothing: Self { get } }
extension Optional: NullableColumn { fileprivate static var nothing: Self { nil } }

/// A row read by a `FileConnection`, decoded by SQLiteKit's own decoder as a row from SQLiteNIO would be.
struct ReadRow: SQLRow {
    let columns: ReadColumns
    let values: [SQLiteData]

    var allColumns: [String] { columns.names }
    func contains(column: String) -> Bool { columns.positions[column] != nil }

    func decodeNil(column: String) throws -> Bool {
        columns.positions[column].map { values[$0] == .null } ?? true
    }

    func decode<D: Decodable>(column: String, as type: D.Type) throws -> D {
        guard let position = columns.positions[column] else { throw MissingReadColumn(column: column) }
        let value = values[position]
        // Text, numbers, flags and NULL as they are stored, without a Decoder for each (a fifth of a device row's
        // decoding); what is not one of these, or does not read as the type asked for, goes to SQLiteKit's decoder.
        switch value {
        case .null:
            if let nullable = D.self as? any NullableColumn.Type { return nullable.nothing as! D }
        case .text(let text):
            if D.self == String.self || D.self == String?.self { return text as! D }
            // Identifiers are stored as text, and Foundation reads a UUID's text with `sscanf`: most of a row's decoding
            // (measured), and a row has two or three of them.
            if D.self == UUID.self || D.self == UUID?.self, let uuid = UUID(storedText: text) { return uuid as! D }
        case .integer(let number):
            if D.self == Int.self || D.self == Int?.self { return Int(number) as! D }
            if D.self == Bool.self || D.self == Bool?.self, number == 0 || number == 1 { return (number == 1) as! D }
            if D.self == Date.self || D.self == Date?.self { return Date(timeIntervalSince1970: Double(number)) as! D }
        case .float(let seconds):
            // A time exactly as it was written. SQLiteNIO rounds it to the microsecond, so a list's next page, which
            // starts after the time its last row was read with, skipped or repeated the rows written at that instant.
            if D.self == Date.self || D.self == Date?.self { return Date(timeIntervalSince1970: seconds) as! D }
        case .blob: break
        }
        return try FileConnection.decoder.decode(D.self, from: value)
    }
}

struct MissingReadColumn: Error, CustomStringConvertible {
    let column: String
    var description: String { "The read has no column '\(column)'." }
}

/// SQLite refused or failed a statement on a `FileConnection`; `code` is its (extended) result code.
struct SQLiteFileError: Error, CustomStringConvertible, DatabaseError {
    let code: Int32
    let message: String
    var description: String { "SQLite statement failed (\(code)): \(message)" }

    var isConstraintFailure: Bool { code & 0xff == SQLITE_CONSTRAINT }
    var isSyntaxError: Bool { false }
    var isConnectionClosed: Bool { false }

    /// Whether the file itself is out of reach (gone, unreadable, locked past the wait), rather than the statement wrong:
    /// the same primary codes as `DatabaseReachability` takes from SQLiteNIO's errors.
    var isUnreachable: Bool {
        [SQLITE_CANTOPEN, SQLITE_IOERR, SQLITE_BUSY, SQLITE_LOCKED, SQLITE_NOTADB, SQLITE_FULL, SQLITE_READONLY].contains(code & 0xff)
    }
}
