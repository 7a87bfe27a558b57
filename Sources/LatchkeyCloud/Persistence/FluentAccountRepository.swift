import FluentKit
import SQLKit
import Foundation
import LatchkeyProtocol

struct FluentAccountRepository: AccountRepository {
    let database: any Database

    func find(id: UUID) async throws -> Account? {
        try await database.sql.raw("SELECT \(unsafeRaw: Rows.account) FROM accounts WHERE id = \(bind: id)").first()
            .map { try Rows.account($0) }
    }

    func find(email: String) async throws -> Account? {
        try await database.sql.raw("SELECT \(unsafeRaw: Rows.account) FROM accounts WHERE email = \(bind: email)").first()
            .map { try Rows.account($0) }
    }

    func insert(_ account: Account) async throws {
        let model = AccountModel()
        model.id = account.id
        model.email = account.email
        model.name = account.name
        model.role = account.role.rawValue
        model.language = account.language.rawValue
        model.passwordHash = account.passwordHash
        model.createdAt = account.createdAt
        try await insertChecked(.accountExists(email: account.email)) { try await model.create(on: database) }
    }

    func find(ids: Set<UUID>) async throws -> [UUID: Account] {
        guard !ids.isEmpty else { return [:] }
        let rows = try await database.sql.raw("SELECT \(unsafeRaw: Rows.account) FROM accounts WHERE id IN (\(binds: Array(ids)))").all()
        return Dictionary(try rows.map { try Rows.account($0) }.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    }

    func setLanguage(_ language: Language, accountId: UUID) async throws {
        try await AccountModel.query(on: database).filter(\.$id == accountId).set(\.$language, to: language.rawValue).update()
    }

    func insert(_ token: SessionToken) async throws {
        let model = SessionTokenModel()
        model.id = token.tokenHash
        model.accountId = token.accountId
        model.createdAt = token.createdAt
        model.expiresAt = token.expiresAt
        try await model.create(on: database)
    }

    func findToken(hash: String) async throws -> SessionToken? {
        try await database.sql.raw("SELECT account_id, created_at, expires_at FROM session_tokens WHERE token_hash = \(bind: hash)")
            .first().map { row in
                SessionToken(tokenHash: hash, accountId: try row.decode(column: "account_id", as: UUID.self),
                             createdAt: try row.decode(column: "created_at", as: Date.self),
                             expiresAt: try row.decode(column: "expires_at", as: Date.self))
            }
    }

    func deleteToken(hash: String) async throws {
        try await SessionTokenModel.query(on: database).filter(\.$id == hash).delete()
    }

    func deleteTokens(expiredBefore now: Date) async throws {
        try await SessionTokenModel.query(on: database).filter(\.$expiresAt < now).delete()
    }
}
