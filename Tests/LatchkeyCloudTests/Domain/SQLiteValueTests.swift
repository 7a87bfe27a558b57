import FluentKit
import Foundation
@testable import LatchkeyCloud
import LatchkeyProtocol
import Logging
import NIOCore
import SQLiteKit
import SQLiteNIO
import SQLKit
import Testing

@Suite("Pages of a list on SQLite", .timeLimit(.minutes(3)))
struct SQLitePageBoundaryTests {
    /// Rows written at one instant (a reset step notifies at one `now`), with a page boundary among them. The next page
    /// starts after the time the last row was read with; SQLiteNIO reads a time rounded to the microsecond, so a time
    /// the clock gave with more digits came back a little later (the rest of that instant was skipped) or a little
    /// earlier (the whole instant came again, the last row included).
    @Test(arguments: [1_795_820_860.0593128, 1_795_820_860.0593122, 1_795_820_860.5])
    func everyRowWrittenAtOneInstantIsListedOnceAcrossPages(written: Double) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("latchkey-pages-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        let service = try await DatabaseService(
            location: .sqliteFile(path: folder.appendingPathComponent("latchkey.sqlite").path), logger: Logger(label: "test"))
        let store = FluentStore(service)
        let account = Account(id: UUID(), email: "giulia@example.com", name: "Giulia", role: .owner, passwordHash: "-",
                              createdAt: Date(timeIntervalSince1970: written))
        let written = (0..<7).map { _ in
            AccountNotification(accountId: account.id, category: .services, kind: .resetRequested, title: "Reset", body: "A reset",
                                requestId: nil, createdAt: Date(timeIntervalSince1970: written))
        }
        var listed: [UUID] = []
        do {
            try await store.transaction { session in
                try await session.accounts.insert(account)
                try await session.notifications.insert(written)
            }
            var page = PageRequest(limit: 3)
            for _ in 0..<5 {
                let asked = page
                let read = try await store.read { try await $0.notifications.list(accountId: account.id, category: nil, page: asked) }
                listed += read.items.map(\.id)
                guard let next = read.next else { break }
                page = PageRequest(limit: 3, after: next)
            }
        } catch {
            await service.close()
            throw error
        }
        await service.close()
        #expect(listed.count == written.count)
        #expect(Set(listed) == Set(written.map(\.id)))
    }

    /// A cursor carries the time as read, bit for bit, and a time read back exactly is the time that was written.
    @Test func aTimeSurvivesTheCursorBitForBit() throws {
        for _ in 0..<10_000 {
            let seconds = Double.random(in: 1_600_000_000...2_100_000_000)
            #expect(Date(timeIntervalSince1970: seconds).timeIntervalSince1970 == seconds)
            let cursor = PageCursor.time(Date(timeIntervalSince1970: seconds), UUID())
            guard case .time(let at, _) = try PageCursor.given(cursor.text) else { Issue.record("not a time cursor"); return }
            #expect(at.timeIntervalSince1970 == seconds)
        }
    }
}

/// Text, numbers and flags read without SQLiteKit's decoder give what it gives, and what it refuses is still refused.
@Suite("Values read back from SQLite", .timeLimit(.minutes(3)))
struct ReadValueTests {
    let values: [SQLiteData] = [.text("Bar Centrale"), .text(""), .text("5"), .integer(0), .integer(1), .integer(2), .integer(-7),
                                .float(1.5), .null, .blob(ByteBuffer(string: "x"))]

    func expectSame<D: Decodable & Equatable>(_ type: D.Type) {
        for value in values {
            let row = ReadRow(columns: ReadColumns(["v"]), values: [value])
            let expected = Result { try SQLiteDataDecoder().decode(D.self, from: value) }
            let read = Result { try row.decode(column: "v", as: D.self) }
            switch (read, expected) {
            case (.success(let read), .success(let expected)): #expect(read == expected, "\(value) as \(D.self)")
            case (.failure, .failure): break
            default: Issue.record("\(value) as \(D.self): read \(read), SQLiteKit \(expected)")
            }
        }
    }

    @Test func asSQLiteKitReadsThem() {
        expectSame(String.self)
        expectSame(String?.self)
        expectSame(Int.self)
        expectSame(Int?.self)
        expectSame(Bool.self)
        expectSame(Bool?.self)
        expectSame(UUID?.self)
        expectSame(Date?.self)
        expectSame(Double?.self)
    }

    /// A device's LAN addresses, stored as JSON: read without a decoder when they hold no escapes, and always as
    /// `JSONDecoder` reads them, refusals included.
    @Test func storedTextsReadAsJSONDecoderReadsThem() throws {
        let pieces = ["192.168.1.64", "fe80::1%eth0", "", ",", "a,b", "\"", "\\", "/", "é", "\u{1F600}", "\n", "\u{7F}", " ", "[", "]"]
        var stored: [String] = ["[]", "[ ]", "[\"a\" ]", "[\"a\",]", "[,]", "[\"a\"\"b\"]", "[\"a\nb\"]", "[\"\\u0041\"]", "[\"a\\\"b\"]",
                                "[1]", "[\"a\",2]", "[null]", "{}", "\"a\"", "[", "", "[\"\u{1}\"]"]
        for _ in 0..<500 {
            let texts = (0..<Int.random(in: 0...4)).map { _ in (0..<Int.random(in: 0...3)).map { _ in pieces.randomElement()! }.joined() }
            stored.append(String(decoding: try JSONEncoder().encode(texts), as: UTF8.self))
        }
        for json in stored {
            let expected = Result { try JSONDecoder().decode([String].self, from: Data(json.utf8)) }
            switch (Result { try Rows.storedTexts(json) }, expected) {
            case (.success(let read), .success(let expected)): #expect(read == expected, "\(json)")
            case (.failure, .failure): break
            case (let read, let expected): Issue.record("\(json): read \(read), JSONDecoder \(expected)")
            }
        }
    }
}

@Suite("Identifiers read back from SQLite", .timeLimit(.minutes(3)))
struct StoredUUIDTests {
    /// Reading a stored identifier gives what Foundation's parser gives, for any identifier and either case.
    @Test func storedTextReadsAsFoundationReadsIt() {
        for _ in 0..<1_000 {
            let uuid = UUID()
            #expect(UUID(storedText: uuid.uuidString) == uuid)
            #expect(UUID(storedText: uuid.uuidString.lowercased()) == uuid)
        }
    }

    @Test(arguments: ["", "E621E1F8-C36C-495A-93FC-0C247A3E6E5", "E621E1F8-C36C-495A-93FC-0C247A3E6E5FF", "E621E1F8C36C-495A-93FC-0C247A3E6E5FF",
                      "G621E1F8-C36C-495A-93FC-0C247A3E6E5F", "E621E1F8-C36C-495A-93FC+0C247A3E6E5F", "E621E1F8-C36C-495A-93FC-0C247A3E6E5é"])
    func anythingElseIsNotAnIdentifier(text: String) {
        #expect(UUID(storedText: text) == nil)
        #expect(UUID(uuidString: text) == nil)
    }
}
