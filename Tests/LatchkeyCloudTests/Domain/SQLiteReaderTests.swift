import FluentKit
import Foundation
@testable import LatchkeyCloud
import LatchkeyProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import SQLiteKit
import SQLiteNIO
import SQLKit
import Synchronization
import Testing

/// Reads on a SQLite file run on connections of their own (`SQLiteReaders`), beside the one connection that writes
/// (`SQLiteWriter`).
@Suite("Reads and writes on a SQLite file", .timeLimit(.minutes(3)))
struct SQLiteReaderTests {
    /// A SQLite file in a folder of its own, its service and its store, closed and removed after `body`.
    func withStore(_ body: (DatabaseService, FluentStore) async throws -> Void) async throws {
        try await withFile { _, service, store in try await body(service, store) }
    }

    /// The same, with the file's path.
    func withFile(_ body: (String, DatabaseService, FluentStore) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("latchkey-readers-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("latchkey.sqlite").path
        let service = try await DatabaseService(location: .sqliteFile(path: path), logger: Logger(label: "test"))
        do {
            try await body(path, service, FluentStore(service))
        } catch {
            await service.close()
            throw error
        }
        await service.close()
    }

    func account(_ email: String) -> Account {
        Account(id: UUID(), email: email, name: "Giulia", role: .owner, passwordHash: "not a hash", createdAt: Date(timeIntervalSince1970: 1_800_000_000))
    }

    /// With one connection for everything, a read queued behind any transaction in progress: a screen waited for a
    /// device's handshake or a reset's commit. Now it does not wait, and sees the last commit, never a write in progress.
    @Test func aReadDoesNotWaitForAWriteInProgressAndSeesOnlyWhatWasCommitted() async throws {
        try await withStore { _, store in
            let stored = account("giulia@example.com")
            try await store.transaction { try await $0.accounts.insert(stored) }
            let (written, wrote) = AsyncStream.makeStream(of: Void.self)
            let (commit, commitNow) = AsyncStream.makeStream(of: Void.self)
            let writing = Task {
                try await store.transaction { session in
                    try await session.accounts.insert(account("marco@example.com"))
                    wrote.yield()
                    for await _ in commit { break }
                }
            }
            for await _ in written { break }

            let during = try await finishing(within: .seconds(5)) {
                (try await store.read { try await $0.accounts.find(email: "marco@example.com") },
                 try await store.read { try await $0.accounts.find(email: "giulia@example.com") })
            }
            commitNow.yield()
            try await writing.value
            let (uncommitted, committed) = try #require(during, "the read waited for the transaction")
            #expect(uncommitted == nil)
            #expect(committed == stored)
            #expect(try await store.read { try await $0.accounts.find(email: "marco@example.com") }?.name == "Giulia")
        }
    }

    /// A read of several statements (the portal's site page reads the site with its devices, then its installers) sees
    /// one commit throughout: a transaction committed between two of its statements is not half in what it shows.
    @Test func aReadSessionSeesOneCommitThroughout() async throws {
        try await withStore { _, store in
            try await store.transaction { try await $0.accounts.insert(account("giulia@example.com")) }
            let (before, after) = try await store.read { session in
                let before = try await session.accounts.find(email: "marco@example.com")
                try await store.transaction { try await $0.accounts.insert(account("marco@example.com")) }
                return (before, try await session.accounts.find(email: "marco@example.com"))
            }
            #expect(before == nil)
            #expect(after == nil, "the read's second statement saw a commit made after its first")
            #expect(try await store.read { try await $0.accounts.find(email: "marco@example.com") } != nil)
        }
    }

    /// A read session holds its connection while it awaits. Past the readers' limit, a session waits for a connection
    /// given back, rather than opening one more: a burst of requests does not open a connection each (a file, its log
    /// and its schema read anew), and every session still runs. A read inside a read is refused, and once closed, the
    /// readers refuse a session.
    @Test func sessionsPastTheLimitWaitForAConnectionGivenBack() async throws {
        try await withFile { path, _, store in
            try await store.transaction { try await $0.accounts.insert(account("giulia@example.com")) }
            let readers = SQLiteReaders(path: path, limit: 2)
            let inside = NIOLockedValueBox((now: 0, most: 0))
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        try await readers.withSnapshot { connection in
                            inside.withLockedValue { $0.now += 1; $0.most = max($0.most, $0.now) }
                            defer { inside.withLockedValue { $0.now -= 1 } }
                            try await Task.sleep(for: .milliseconds(50))
                            var count = 0
                            try connection.rows("SELECT COUNT(*) AS n FROM accounts", []) { row in
                                count = (try? row.decode(column: "n", as: Int.self)) ?? -1
                            }
                            return count
                        }
                    }
                }
                for try await count in group { #expect(count == 1) }
            }
            #expect(inside.withLockedValue { $0.most } == 2)
            // A read started inside a read is refused: with every connection held by a read doing so, all would wait.
            await #expect(throws: SQLiteFileError.self) {
                try await readers.withSnapshot { _ in try await readers.withSnapshot { _ in } }
            }
            #expect(try await readers.withSnapshot { connection in connection.inTransaction })
            readers.close()
            await #expect(throws: SQLiteFileError.self) { try await readers.withSnapshot { _ in } }
        }
    }

    /// The reading connections are opened read-only: nothing that reaches them can change the data.
    @Test func aReadCannotWrite() async throws {
        try await withStore { _, store in
            try await store.transaction { try await $0.accounts.insert(account("giulia@example.com")) }
            let left = try await store.read { session in
                let sql = try (session as! FluentSession).database.sql
                await #expect(throws: SQLiteFileError.self) { try await sql.raw("DELETE FROM accounts").run() }
                return try await sql.raw("SELECT COUNT(*) AS n FROM accounts").first()?.decode(column: "n", as: Int.self)
            }
            #expect(left == 1)
        }
    }

    /// A kept statement answers each call with that call's binds, a failed statement leaves its connection usable, and
    /// past the statements a connection keeps, the next ones still answer.
    @Test func keptStatementsAnswerEachCallWithItsOwnValues() async throws {
        try await withStore { _, store in
            let emails = (0..<(FileConnection.statementsKept + 10)).map { "person\($0)@example.com" }
            try await store.transaction { session in for email in emails { try await session.accounts.insert(account(email)) } }
            for email in emails.prefix(3) {
                #expect(try await store.read { try await $0.accounts.find(email: email) }?.email == email)
            }
            // A statement that fails while it runs, then the same statement again: it is kept, and answers.
            let a = try await store.read { session in
                let sql = try (session as! FluentSession).database.sql
                let path = "$.a"
                await #expect(throws: SQLiteFileError.self) {
                    try await sql.raw("SELECT json_extract(\(bind: "not json"), \(bind: path)) AS a").run()
                }
                return try await sql.raw("SELECT json_extract(\(bind: #"{"a": 7}"#), \(bind: path)) AS a").first()?
                    .decode(column: "a", as: Int.self)
            }
            #expect(a == 7)
            // Distinct statements, one per length of the IN list, more than a connection keeps.
            for count in 1...emails.count {
                let found = try await store.read { session in
                    try await (session as! FluentSession).database.sql
                        .raw("SELECT email FROM accounts WHERE email IN (\(SQLList(emails.prefix(count).map { SQLBind($0) })))").all()
                }
                #expect(found.count == count)
            }
            #expect(try await store.read { try await $0.accounts.find(email: emails.last!) }?.email == emails.last)
        }
    }

    /// Transactions run on the writer's own connection (`SQLiteWriter`): one that fails leaves nothing of what it wrote,
    /// through SQL or FluentKit's models, a broken unique rule is the domain's refusal, and the next transaction commits.
    @Test func aTransactionThatFailsLeavesNothingAndTheNextOneCommits() async throws {
        try await withStore { service, store in
            #expect(service.writer != nil)
            struct Refused: Error {}
            let giulia = account("giulia@example.com")
            let site = Site(id: UUID(), ownerId: giulia.id, name: "Bar Centrale", address: nil, createdAt: giulia.createdAt)
            await #expect(throws: Refused.self) {
                try await store.transaction { session in
                    try await session.accounts.insert(giulia)
                    try await session.sites.insert(site)
                    #expect(try await session.sites.find(id: site.id) == site, "a transaction reads what it wrote")
                    throw Refused()
                }
            }
            #expect(try await store.read { try await $0.accounts.find(id: giulia.id) } == nil)
            #expect(try await store.read { try await $0.sites.find(id: site.id) } == nil)

            try await store.transaction { try await $0.accounts.insert(giulia) }
            let marco = account("marco@example.com")
            await #expect(throws: LatchkeyError.accountExists(email: giulia.email)) {
                try await store.transaction { session in
                    try await session.accounts.insert(marco)
                    try await session.accounts.insert(account(giulia.email))
                }
            }
            #expect(try await store.read { try await $0.accounts.find(id: marco.id) } == nil)
            #expect(try await store.read { try await $0.accounts.find(id: giulia.id) } == giulia)
        }
    }

    /// Many transactions asked for at once take their turns: none fails busy, none is lost, and readers meanwhile see
    /// only whole transactions (each writes two rows, so a count is always even).
    @Test func transactionsAskedForAtOnceAllCommitInTurn() async throws {
        try await withStore { _, store in
            let writers = 200
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<writers {
                    group.addTask {
                        try await store.transaction { session in
                            try await session.accounts.insert(account("owner\(index)@example.com"))
                            try await Task.sleep(for: .microseconds(50))
                            try await session.accounts.insert(account("partner\(index)@example.com"))
                        }
                    }
                }
                group.addTask {
                    for _ in 0..<50 {
                        let counted = try await count(store)
                        #expect((counted ?? 1) % 2 == 0, "a reader saw half a transaction: \(counted ?? -1)")
                        await Task.yield()
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await count(store) == writers * 2)
        }
    }

    /// The service stopping while a transaction is under way (a cancelled service group stops every service at once):
    /// the writer's connection is closed only once that transaction has committed, and one asked for after fails instead
    /// of running on a closed connection. Closed at once, the connection was freed under a statement being stepped (the
    /// benchmark crashed in `sqlite3VdbeExec`), or the transaction's last statement found it closed and was lost.
    @Test func closingWaitsForTheTransactionUnderWayAndRefusesTheNext() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("latchkey-readers-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        let location = DatabaseLocation.sqliteFile(path: folder.appendingPathComponent("latchkey.sqlite").path)
        let service = try await DatabaseService(location: location, logger: Logger(label: "test"))
        let writer = try #require(service.writer)
        let store = FluentStore(service)
        let (started, startedSignal) = AsyncStream.makeStream(of: Void.self)
        let (released, release) = AsyncStream.makeStream(of: Void.self)
        let underWay = Task {
            try await store.transaction { session in
                try await session.accounts.insert(account("first@example.com"))
                startedSignal.yield()
                for await _ in released { break }
                try await session.accounts.insert(account("second@example.com"))
            }
        }
        for await _ in started { break }
        let closed = Mutex(false)
        let closing = Task {
            await service.close()
            closed.withLock { $0 = true }
        }
        // The close has either finished already (the failure this test is for) or waits in line behind the transaction.
        while writer.transactionsInLine == 0, !closed.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(1)) }
        release.yield()
        try await underWay.value
        await closing.value
        await #expect(throws: (any Error).self) { try await store.transaction { try await $0.accounts.insert(account("late@example.com")) } }

        let reopened = try await DatabaseService(location: location, logger: Logger(label: "test"))
        #expect(try await count(FluentStore(reopened)) == 2, "both rows of the transaction are on disk")
        await reopened.close()
    }

    @Sendable func count(_ store: FluentStore) async throws -> Int? {
        try await store.read { session in
            try await (session as! FluentSession).database.sql.raw("SELECT COUNT(*) AS n FROM accounts").first()?
                .decode(column: "n", as: Int.self)
        }
    }

    /// Transactions that queue for the writer share a commit (one fsync for many), and one that throws in the middle
    /// of its group leaves nothing while the others in that group are kept.
    @Test func transactionsInLineShareACommitAndAFailedOneLeavesOnlyItselfOut() async throws {
        try await withStore { service, store in
            struct Refused: Error {}
            let writers = 120
            let writer = try #require(service.writer)
            let commitsBefore = writer.commitsMade
            let refused = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<writers {
                    group.addTask {
                        do {
                            try await store.transaction { session in
                                // The first waits for a line to form, as one does behind a commit under load.
                                while index == 0, writer.transactionsInLine < 20 { try await Task.sleep(for: .milliseconds(1)) }
                                try await session.accounts.insert(account("owner\(index)@example.com"))
                                if index % 7 == 3 { throw Refused() }
                                try await session.accounts.insert(account("partner\(index)@example.com"))
                            }
                            return false
                        } catch is Refused {
                            return true
                        }
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(refused == (0..<writers).filter { $0 % 7 == 3 }.count)
            #expect(try await count(store) == (writers - refused) * 2)
            for index in (0..<writers).filter({ $0 % 7 == 3 }) {
                #expect(try await store.read { try await $0.accounts.find(email: "owner\(index)@example.com") } == nil)
            }
            let commits = writer.commitsMade - commitsBefore
            #expect(commits < writers / 2, "\(commits) commits for \(writers) transactions in line")
        }
    }

    /// A commit that fails fails every transaction of its group: none of their callers is told it is done, nothing of
    /// theirs is kept, and the next transaction commits.
    @Test func aCommitThatFailsFailsItsWholeGroupAndTheNextCommits() async throws {
        try await withStore { service, store in
            let writer = try #require(service.writer)
            let (started, begun) = AsyncStream.makeStream(of: Void.self)
            let first = Task {
                try await store.transaction { session in
                    let database = try (session as! FluentSession).database.sql
                    // A site whose owner does not exist, its check put off to COMMIT: the group's commit fails.
                    try await database.raw("PRAGMA defer_foreign_keys = ON").run()
                    try await session.accounts.insert(account("first@example.com"))
                    try await session.sites.insert(Site(id: UUID(), ownerId: UUID(), name: "Nobody's", address: nil,
                                                        createdAt: Date(timeIntervalSince1970: 1_800_000_000)))
                    begun.yield()
                    // Done once the others are in line for the turn: they join this one's group.
                    while writer.transactionsInLine < 3 { try await Task.sleep(for: .milliseconds(1)) }
                }
            }
            for await _ in started { break }
            let others = (0..<3).map { index in
                Task { try await store.transaction { try await $0.accounts.insert(account("other\(index)@example.com")) } }
            }
            for task in [first] + others {
                await #expect(throws: (any Error).self) { try await task.value }
            }
            #expect(try await count(store) == 0)
            try await store.transaction { try await $0.accounts.insert(account("after@example.com")) }
            #expect(try await count(store) == 1)
        }
    }
}
