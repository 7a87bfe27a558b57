import Foundation
@testable import LatchkeyCloud
import LatchkeyProtocol
import Testing

/// Account passwords people actually guess are refused; names cannot carry terminal or direction controls; expired
/// sessions are purged.
@Suite("Account hygiene", .timeLimit(.minutes(3)))
struct AccountHygieneTests {
    func signUp(_ app: TestPlatform, email: String = "laura@example.com", name: String = "Laura", password: String)
        async throws -> TestPlatform.Answer
    {
        try await app.call(.post, "/api/v1/accounts", body: API.SignUp(email: email, password: password, name: name, role: .owner))
    }

    @Test func commonPasswordsAndTheEmailAreRefused() async throws {
        try await TestPlatform.run { app in
            for password in ["password123", "Password123", "QWERTYUIOP", "iloveyou", "juventus1"] {
                let answer = try await signUp(app, password: password)
                #expect(answer.errorCode == .weakPassword, "\(password): \(answer.text)")
            }
            #expect(try await signUp(app, email: "laura.rossi@example.com", password: "laura.rossi@example.com").errorCode == .weakPassword)
            #expect(try await signUp(app, email: "laura.rossi@example.com", password: "laura.rossi").errorCode == .weakPassword)
            #expect(try await signUp(app, password: "correct horse 1").status == .created)
        }
    }

    @Test func namesCannotCarryControlCharacters() async throws {
        try await TestPlatform.run { app in
            for name in ["Laura\u{1B}[31m Rossi", "Laura\nRossi", "Laura \u{202E}issoR"] {
                let answer = try await signUp(app, name: name, password: "correct horse 1")
                #expect(answer.errorCode == .invalidRequest, "\(name.debugDescription): \(answer.text)")
            }
            let owner = try await app.signUp(.owner)
            let site = try await app.call(.post, "/api/v1/sites", token: owner.token, body: API.CreateSite(name: "Bar\u{7}Centrale", address: nil))
            #expect(site.errorCode == .invalidRequest)
        }
    }

    @Test func expiredSessionsArePurged() async throws {
        try await TestPlatform.run { app in
            let owner = try await app.signUp(.owner)
            let hash = SessionToken.hash(owner.token)
            #expect(try await app.platform.store.read { try await $0.accounts.findToken(hash: hash) } != nil)
            app.clock.advance(by: 31 * 24 * 60 * 60)
            try await app.platform.accounts.purgeExpiredSessions()
            #expect(try await app.platform.store.read { try await $0.accounts.findToken(hash: hash) } == nil)
        }
    }
}
