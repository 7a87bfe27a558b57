import FluentKit
import Foundation
import Hummingbird
@testable import LatchkeyCloud
import LatchkeyProtocol
import NIOCore
import SQLKit
import Testing

/// Failures that are not the caller's answer 500 (or 503 when the database is gone), logged once with their cause;
/// a caller's oversized or malicious request is a 4xx that says so, never a 500.
@Suite("Faults and their answers", .timeLimit(.minutes(3)))
struct FaultTests {
    /// A file database keeps a write-ahead log with full syncs: one fsync a commit, and a commit survives a crash.
    @Test func aFileDatabaseWritesAheadAndSyncsEveryCommit() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("latchkey-wal-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        let configuration = LatchkeyConfiguration.testing(database: .sqliteFile(path: folder.appendingPathComponent("latchkey.sqlite").path))
        defer { configuration.removeTestingKeyFolder() }
        let platform = try await buildPlatform(configuration)
        let sql = try #require(platform.database as? any SQLDatabase)
        let mode = try await sql.raw("PRAGMA journal_mode").first()?.decode(column: "journal_mode", as: String.self)
        #expect(mode == "wal")
        let synchronous = try await sql.raw("PRAGMA synchronous").first()?.decode(column: "synchronous", as: Int.self)
        #expect(synchronous == 2, "FULL")
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("latchkey.sqlite-wal").path))
        await platform.databaseService.close()
    }

    @Test func bodiesLargerThan64KBAre413() async throws {
        try await TestPlatform.run { app in
            let big = "{\"email\": \"" + String(repeating: "a", count: 100_000) + "\", \"password\": \"x\"}"
            let api = try await app.call(.post, "/api/v1/sessions", json: big)
            #expect(api.status == .contentTooLarge)
            #expect(api.errorCode == .invalidRequest)

            let form = try await app.client.execute(
                uri: "/signin", method: .post, headers: [.contentType: "application/x-www-form-urlencoded", .acceptLanguage: "en"],
                body: ByteBuffer(string: "email=" + String(repeating: "a", count: 100_000))) { $0 }
            #expect(form.status == .contentTooLarge)
            #expect(String(buffer: form.body).contains("<html"), "a person gets a page, not JSON")
        }
    }

    @Test func aPathThatClimbsOutOfTheStaticFolderIsNotFound() async throws {
        try await TestPlatform.run { app in
            for path in ["/static/../../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd", "/static/..%2f..%2fetc/passwd",
                         "/api/v1/../../etc/passwd"] {
                let answer = try await app.client.execute(uri: path, method: .get) { $0 }
                #expect(answer.status == .notFound, "\(path): \(answer.status)")
            }
            // Two dots inside an id, or a stray percent sign, are an id that does not exist, not a malformed request.
            let scene = try await app.resetScene()
            for path in ["/api/v1/devices/0..0/audit", "/api/v1/devices/a%zz", "/api/v1/password-resets/1..2"] {
                let answer = try await app.call(.get, path, token: scene.owner.token)
                #expect(answer.status == .notFound, "\(path): \(answer.status)")
            }
            // The static files themselves are still served.
            #expect(try await app.client.execute(uri: "/static/hpke.js", method: .get) { $0.status } == .ok)
        }
    }

    @Test func aCorruptRowIsOurFailureLoggedOnce() async throws {
        let captured = CapturedLog()
        try await TestPlatform.run(logger: captured.logger(label: "latchkey")) { app in
            let scene = try await app.resetScene()
            let request: API.PasswordReset = try await app.requestReset(scene).decode()
            let sql = try #require(app.platform.database as? any SQLDatabase)
            try await sql.raw("UPDATE password_reset_requests SET status = 'halfway' WHERE id = \(bind: request.id)").run()

            let api = try await app.call(.get, "/api/v1/password-resets/\(request.id)", token: scene.owner.token)
            #expect(api.status == .internalServerError)
            #expect(api.errorCode == .internalError)
            #expect(!api.text.contains("halfway"), "the answer does not describe our database to the caller")
            let logged = captured.text.components(separatedBy: "\n").filter { $0.contains("halfway") }
            #expect(logged.count == 1, "logged once with its cause: \(logged)")
        }
    }

    @Test(.enabled(if: TestDatabase.postgresURL != nil, "needs PostgreSQL"))
    func aDatabaseThatIsGoneIs503() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            try await TestDatabase.dropWhileInUse(app.platform.database)
            let api = try await app.call(.get, "/api/v1/sites", token: scene.owner.token)
            #expect(api.status == .serviceUnavailable, "\(api.status) \(api.text)")
            #expect(api.errorCode == .internalError)
            let page = try await app.client.execute(uri: "/sites", method: .get, headers: [.cookie: "lk_session=\(scene.owner.token)"]) { $0 }
            #expect(page.status == .serviceUnavailable)
        }
    }

    /// PostgreSQL ended the connection under an open transaction (a restart, a failover, an operator's
    /// `pg_terminate_backend`). The transaction's next statement must fail as "unreachable", not wait forever: PostgresNIO
    /// 1.33 drops a statement written to a connection that has already closed, and never answers it.
    @Test(.enabled(if: TestDatabase.postgresURL != nil, "needs PostgreSQL"))
    func aTransactionWhoseConnectionIsEndedFailsInsteadOfWaitingForever() async throws {
        try await Self.expectUnreachable(
            "nil: the statement after the connection ended was never answered"
        ) { sql, end in
            try await end()
            // Long enough for the client to see the connection close and take it apart.
            try await Task.sleep(for: .milliseconds(300))
            try await sql.raw("SELECT 1").run()
        }
    }

    /// The connection ends while a statement inside a transaction runs: the statement fails, and the rollback that
    /// follows it must not be sent into the closed connection and waited for.
    @Test(.enabled(if: TestDatabase.postgresURL != nil, "needs PostgreSQL"))
    func aTransactionWhoseStatementIsCutOffFailsInsteadOfWaitingForever() async throws {
        try await Self.expectUnreachable("nil: the transaction never ended") { sql, end in
            let killer = Task {
                try await Task.sleep(for: .milliseconds(300))
                try await end()
            }
            defer { killer.cancel() }
            try await sql.raw("SELECT pg_sleep(5)").run()
        }
    }

    /// Runs `body` in a store transaction on PostgreSQL, with the transaction's own connection and a way to have
    /// PostgreSQL end it (`pg_terminate_backend`, from another connection), and expects the transaction to end as
    /// "unreachable" within 20 s. `failure`: what a nil outcome (not ended) means.
    private static func expectUnreachable(
        _ failure: Comment,
        _ body: @escaping @Sendable (any SQLDatabase, @escaping @Sendable () async throws -> Void) async throws -> Void
    ) async throws {
        try await TestPlatform.run { app in
            let pooled = try #require(app.platform.database as? any SQLDatabase)
            let outcome = try await finishing(within: .seconds(20)) {
                do {
                    try await app.platform.store.transaction { session in
                        let sql = try #require((session as? FluentSession)?.database as? any SQLDatabase)
                        let pid = try #require(
                            try await sql.raw("SELECT pg_backend_pid() AS pid").first()?.decode(column: "pid", as: Int32.self))
                        try await body(sql) { try await pooled.raw("SELECT pg_terminate_backend(\(bind: pid))").run() }
                    }
                    return "committed"
                } catch {
                    return DatabaseReachability.isUnreachable(error) ? "unreachable" : "\(String(reflecting: error))"
                }
            }
            #expect(outcome == "unreachable", failure)
        }
    }

    @Test func metricsAreForTheOperatorOnly() async throws {
        try await TestPlatform.run(configure: { $0.metricsToken = "operator-secret-token-0123456789" }) { app in
            #expect(try await app.call(.get, "/metrics").status == .unauthorized)
            #expect(try await app.call(.get, "/metrics", token: "someone-else").status == .unauthorized)
            let scene = try await app.resetScene()
            #expect(try await app.call(.get, "/metrics", token: scene.owner.token).status == .unauthorized, "an account is not the operator")
            let scraped = try await app.call(.get, "/metrics", token: "operator-secret-token-0123456789")
            #expect(scraped.status == .ok)
            #expect(scraped.text.contains("latchkey_http_requests_total"))
        }
        // Without a token only the operator's own machine may read them, and not through the proxy.
        try await TestPlatform.run(.live, configure: { $0.trustedProxies = ["127.0.0.1"] }) { app in
            #expect(try await app.call(.get, "/metrics").status == .ok)
            let forwarded = try await app.client.execute(uri: "/metrics", method: .get, headers: [.xForwardedFor: "203.0.113.9"]) { $0 }
            #expect(forwarded.status == .unauthorized)
        }
    }
}
