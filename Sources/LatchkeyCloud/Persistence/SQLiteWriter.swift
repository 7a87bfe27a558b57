import FluentKit
import Foundation
import Logging
import NIOCore
import NIOPosix
import SQLKit
import SQLiteKit
import SQLiteNIO
import Synchronization
import VaporCSQLite

/// Transactions on a SQLite file, one at a time, on a read-write connection of their own with their statements kept.
///
/// Measured with `perf` on complete resets (issue 13's note): through SQLiteNIO every statement of a transaction was
/// parsed again (prepare was 8.7 % of the server's CPU) and made two trips between an event loop and NIO's thread pool
/// (its queries were 22.5 % of the server's CPU, of which stepping the statements was 12.7 %). Here a transaction takes
/// the writer's turn, runs each statement where its task runs (short, indexed statements: microseconds), and sends only
/// its COMMIT, which waits for the disk, to the thread pool, so no event loop waits for an fsync.
///
/// SQLite lets one connection write at a time anyway; the turn makes transactions queue here, in order, rather than
/// fail busy. Readers (`SQLiteReaders`) never wait for it: the file is in write-ahead-log mode.
final class SQLiteWriter: Sendable {
    private let connection: FileConnection
    private let turn = WriterTurn()

    init(path: String) throws {
        connection = try FileConnection(path: path, writes: true)
        // As SQLiteNIO's connection did (`enableForeignKeys`): a per-connection setting.
        try connection.run("PRAGMA foreign_keys = ON")
        // SQLite's default, said out loud: a commit is on disk, power cut included, before the request is answered.
        try connection.run("PRAGMA synchronous = FULL")
    }

    /// Runs `body` in one transaction: committed if it returns, rolled back if it throws.
    func transaction<T>(_ body: (FileConnection) async throws -> T) async throws -> T {
        await turn.take()
        defer { turn.give() }
        do {
            // IMMEDIATE: the write lock is taken now, so a transaction never fails half-way on upgrading a read to a write.
            try connection.run("BEGIN IMMEDIATE")
            let result = try await body(connection)
            let connection = connection
            try await NIOThreadPool.singleton.runIfActive { try connection.run("COMMIT") }
            return result
        } catch {
            if connection.inTransaction { try? connection.run("ROLLBACK") }
            throw error
        }
    }

    /// Called once nothing else will write; a transaction still queued would find the connection closed.
    func close() {
        connection.close()
    }
}

/// Whose turn it is to write: transactions take it in the order they asked for it.
private final class WriterTurn: Sendable {
    private struct State {
        var held = false
        var waiting: [CheckedContinuation<Void, Never>] = []
        var next = 0
    }

    private let state = Mutex(State())

    func take() async {
        let free = state.withLock { state in
            guard state.held else { state.held = true; return true }
            return false
        }
        if free { return }
        await withCheckedContinuation { continuation in
            let taken = state.withLock { state in
                guard state.held else { state.held = true; return true }
                state.waiting.append(continuation)
                return false
            }
            if taken { continuation.resume() }
        }
    }

    /// Hands the turn to the next in line, who holds it from here on, or leaves it free.
    func give() {
        let next: CheckedContinuation<Void, Never>? = state.withLock { state in
            guard state.next < state.waiting.count else {
                state.held = false
                state.waiting.removeAll(keepingCapacity: true)
                state.next = 0
                return nil
            }
            defer { state.next += 1 }
            return state.waiting[state.next]
        }
        next?.resume()
    }
}

/// What a transaction's session writes through on a SQLite file: its statements run on the writer's connection, inside
/// the transaction the writer began.
struct SQLiteWritingDatabase: SQLiteFileDatabase {
    let base: any FluentKit.Database & SQLDatabase
    let connection: FileConnection

    var inTransaction: Bool { true }

    func onConnection(_ body: (FileConnection) throws -> Void) throws {
        try body(connection)
    }
}
