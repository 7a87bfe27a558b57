import Foundation
@testable import LatchkeyCloud
import Testing

extension SQLiteReaderTests {
    /// Each transaction of a group is a savepoint, whose pages' first versions SQLite keeps in a statement journal, now
    /// in memory (`PRAGMA temp_store = MEMORY`): where it spilled into a file past 64 KiB. A refused transaction that
    /// changed far more than that is still rolled back whole, and the group's others still commit.
    @Test func aRefusedTransactionThatChangedMuchLeavesNothingAndItsGroupCommits() async throws {
        try await withStore { service, store in
            struct Refused: Error {}
            let writer = try #require(service.writer)
            let commitsBefore = writer.commitsMade
            // Each account row about 4 KiB: 64 of them, some 256 KiB of pages, before the refusal.
            let long = String(repeating: "Giulia ", count: 600)
            let refusedEmails = (0..<64).map { "refused\($0)@example.com" }
            let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<12 {
                    group.addTask {
                        do {
                            try await store.transaction { session in
                                while index == 0, writer.transactionsInLine < 11 { try await Task.sleep(for: .milliseconds(1)) }
                                if index == 5 {
                                    for email in refusedEmails {
                                        var big = account(email)
                                        big.name = long
                                        try await session.accounts.insert(big)
                                    }
                                    throw Refused()
                                }
                                try await session.accounts.insert(account("kept\(index)@example.com"))
                            }
                            return true
                        } catch is Refused {
                            return false
                        }
                    }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(outcomes.filter { !$0 }.count == 1)
            #expect(try await count(store) == 11)
            for email in refusedEmails {
                #expect(try await store.read { try await $0.accounts.find(email: email) } == nil)
            }
            #expect(writer.commitsMade - commitsBefore < 11, "the transactions in line shared commits")
        }
    }
}
