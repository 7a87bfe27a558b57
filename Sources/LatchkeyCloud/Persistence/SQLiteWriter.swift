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

/// Transactions on a SQLite file, one at a time, on a read-write connection of their own with their statements kept,
/// committed in groups.
///
/// Measured with `perf` on complete resets (issue 13's note): through SQLiteNIO every statement of a transaction was
/// parsed again (prepare was 8.7 % of the server's CPU) and made two trips between an event loop and NIO's thread pool
/// (its queries were 22.5 % of the server's CPU, of which stepping the statements was 12.7 %). Here a transaction takes
/// the writer's turn, runs each statement where its task runs (short, indexed statements: microseconds), and sends only
/// the COMMIT, which waits for the disk, to the thread pool, so no event loop waits for an fsync.
///
/// **Group commit.** A commit waits for an fsync, and the writer's turn is held meanwhile; with one commit per
/// transaction the fsyncs were the writer's pace (issue 13's note: complete flows went 86–112 → 126 a second with
/// `synchronous = NORMAL`, which would lose answered resets on a power cut). So transactions that queued for the turn
/// join the open group: each runs inside a savepoint of one SQLite transaction (a member that throws rolls back to its
/// savepoint and leaves the others whole), and the last of the group commits once for all. A member's caller is
/// answered only after that commit is on disk; if it fails, every member fails and nothing of the group is applied,
/// as if each had failed its own commit.
///
/// SQLite lets one connection write at a time anyway; the turn makes transactions queue here, in order, rather than
/// fail busy. Readers (`SQLiteReaders`) never wait for it: the file is in write-ahead-log mode.
final class SQLiteWriter: Sendable {
    /// The most transactions one commit carries, so that the first of a long queue is not kept waiting for the rest.
    static let largestGroup = 64

    private let connection: FileConnection
    private let turn = WriterTurn()
    private let groups = Groups()

    init(path: String) throws {
        connection = try FileConnection(path: path, writes: true)
        // As SQLiteNIO's connection did (`enableForeignKeys`): a per-connection setting.
        try connection.run("PRAGMA foreign_keys = ON")
        // SQLite's default, said out loud: a commit is on disk, power cut included, before the request is answered.
        try connection.run("PRAGMA synchronous = FULL")
        // A transaction of a group is a savepoint, whose pages' first versions SQLite keeps in a statement journal: past
        // 64 KiB it spilled them into a temporary file, with a write system call a page (4.6 % of the service's CPU over
        // complete reset flows, perf, issue 13). Held in memory they are copied, not written; the journal is freed at
        // the end of each commit.
        try connection.run("PRAGMA temp_store = MEMORY")
    }

    /// Transactions waiting for the writer's turn.
    var transactionsInLine: Int { turn.inLine }

    /// COMMITs run so far: fewer than the transactions when groups formed.
    var commitsMade: Int { groups.state.withLock { $0.commits } }

    /// Runs `body` in one transaction: on disk when this returns, rolled back whole if it throws.
    func transaction<T>(_ body: (FileConnection) async throws -> T) async throws -> T {
        await turn.take()
        let group: CommitGroup
        let result: Result<T, any Error>
        do {
            group = try joinedGroup()
        } catch {
            await endTurn()
            throw error
        }
        do {
            try connection.run("SAVEPOINT member")
            let value = try await body(connection)
            try connection.run("RELEASE member")
            group.joined()
            result = .success(value)
        } catch {
            result = .failure(error)
            if connection.inTransaction {
                // Statements may have run: take back this member's and keep the group's, or, if they cannot be taken
                // back alone, keep none, so that a failed member's writes are never committed.
                do {
                    try connection.run("ROLLBACK TO member")
                    try connection.run("RELEASE member")
                } catch {
                    try? connection.run("ROLLBACK")
                }
            }
            if !connection.inTransaction {
                // SQLite rolled the whole transaction back itself (full disk, I/O error): the group is gone with it.
                groups.state.withLock { $0.open = nil }
                group.finish(.failure(error))
            }
        }
        await endTurn()
        switch result {
        case .success(let value):
            try await group.committed()
            return value
        case .failure(let error):
            throw error
        }
    }

    /// The open group, or a new one with its SQLite transaction begun.
    private func joinedGroup() throws -> CommitGroup {
        if let group = groups.state.withLock({ $0.open }) { return group }
        // IMMEDIATE: the write lock is taken now, so a transaction never fails half-way on upgrading a read to a write.
        try connection.run("BEGIN IMMEDIATE")
        let group = CommitGroup()
        groups.state.withLock { $0.open = group }
        return group
    }

    /// Leaves the group open for the next in line, or commits it when nobody waits or it is full; then hands the turn on.
    private func endTurn() async {
        let wanted = turn.isWanted
        await commitOpenGroup { !wanted || $0.members >= Self.largestGroup }
        turn.give()
    }

    /// Commits the open group (and answers its members) if `due` says so; the caller holds the turn.
    private func commitOpenGroup(if due: (CommitGroup) -> Bool) async {
        let closing = groups.state.withLock { state -> CommitGroup? in
            guard let group = state.open, due(group) else { return nil }
            state.open = nil
            return group
        }
        if let closing { closing.finish(await commit(empty: closing.members == 0)) }
    }

    private func commit(empty: Bool) async -> Result<Void, any Error> {
        let connection = connection
        if empty {
            // Every member failed: nothing to keep, and nothing to wait for the disk for.
            try? connection.run("ROLLBACK")
            return .success(())
        }
        do {
            groups.state.withLock { $0.commits += 1 }
            try await NIOThreadPool.singleton.runIfActive { try connection.run("COMMIT") }
            return .success(())
        } catch {
            // A failed COMMIT can leave the transaction open; the group's writes must not ride on the next one.
            if connection.inTransaction { try? connection.run("ROLLBACK") }
            return .failure(error)
        }
    }

    /// Closes the connection once the transaction under way, and its group, have committed; transactions asked for
    /// after find it closed and fail. A cancelled service group stops every service at once: closing at once freed the
    /// connection under a statement another task was stepping (the benchmark crashed in `sqlite3VdbeExec`).
    func close() async {
        await turn.take()
        await commitOpenGroup { _ in true }
        connection.close()
        turn.give()
    }
}

/// The group whose SQLite transaction is open (touched only by the holder of the turn), and the COMMITs run so far.
private final class Groups: Sendable {
    struct State {
        var open: CommitGroup?
        var commits = 0
    }

    let state = Mutex(State())
}

/// The transactions one COMMIT carries, and its outcome, which each of them waits for before its caller is answered.
private final class CommitGroup: Sendable {
    private struct State {
        var members = 0
        var outcome: Result<Void, any Error>?
        var waiting: [CheckedContinuation<Void, any Error>] = []
    }

    private let state = Mutex(State())

    var members: Int { state.withLock { $0.members } }

    func joined() {
        state.withLock { $0.members += 1 }
    }

    func finish(_ outcome: Result<Void, any Error>) {
        let waiting = state.withLock { state in
            guard state.outcome == nil else { return [CheckedContinuation<Void, any Error>]() }
            state.outcome = outcome
            defer { state.waiting = [] }
            return state.waiting
        }
        for continuation in waiting { continuation.resume(with: outcome) }
    }

    func committed() async throws {
        try await withCheckedThrowingContinuation { continuation in
            let outcome = state.withLock { state in
                if state.outcome == nil { state.waiting.append(continuation) }
                return state.outcome
            }
            if let outcome { continuation.resume(with: outcome) }
        }
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

    var inLine: Int { state.withLock { $0.waiting.count - $0.next } }

    /// Whether anyone is waiting for the turn.
    var isWanted: Bool { inLine > 0 }

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
