import Crypto
import Foundation
import LatchkeyProtocol

/// A person who signs in: a site owner or an installer.
public struct Account: Sendable, Equatable {
    public var id: UUID
    public var email: String
    public var name: String
    public var role: AccountRole
    /// The language of the account's e-mails: chosen at sign-up, then the portal's language at each sign-in there.
    public var language: Language
    public var passwordHash: String
    public var createdAt: Date

    public init(
        id: UUID, email: String, name: String, role: AccountRole, language: Language = .en, passwordHash: String, createdAt: Date
    ) {
        self.id = id
        self.email = email
        self.name = name
        self.role = role
        self.language = language
        self.passwordHash = passwordHash
        self.createdAt = createdAt
    }
}

/// The rules an account's fields follow, checked before anything is stored.
public enum AccountRules {
    public static let maximumEmailLength = 254
    public static let maximumNameLength = 100
    public static let minimumPasswordLength = 8
    /// bcrypt reads at most 72 bytes; a longer password would be silently truncated.
    public static let maximumPasswordBytes = 72

    /// Lower-cased and trimmed, so that one person has one account whatever they type.
    public static func normalizedEmail(_ email: String) throws(LatchkeyError) -> String {
        let email = email.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        guard email.count <= maximumEmailLength else {
            throw .invalidRequest("The e-mail address is longer than \(maximumEmailLength) characters.")
        }
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !parts[1].hasPrefix("."),
            !parts[1].hasSuffix("."), !email.contains(where: \.isWhitespace)
        else {
            throw .invalidRequest("'\(email)' is not an e-mail address.")
        }
        return email
    }

    public static func checkedName(_ name: String) throws(LatchkeyError) -> String {
        try checkedText(name, field: "name", maximum: maximumNameLength)
    }

    /// At least 8 characters, at most 72 bytes, not one of the most common passwords, not the e-mail or the name.
    public static func checkPassword(_ password: String, email: String = "", name: String = "") throws(LatchkeyError) {
        guard password.count >= minimumPasswordLength else {
            throw .weakPassword("The account password must have at least \(minimumPasswordLength) characters.")
        }
        let lowered = password.lowercased()
        guard !CommonPasswords.all.contains(lowered) else {
            throw .weakPassword("This password is among the most common ones, which are tried first: choose another.")
        }
        let context = [email.lowercased(), String(email.lowercased().split(separator: "@").first ?? ""), name.lowercased()]
        guard !context.contains(where: { !$0.isEmpty && $0 == lowered }) else {
            throw .weakPassword("The account password must not be your e-mail address or your name.")
        }
        guard password.utf8.count <= maximumPasswordBytes else {
            throw .invalidRequest("The account password must be at most \(maximumPasswordBytes) bytes long.")
        }
    }

    /// A required, trimmed, bounded line of text.
    static func checkedText(_ text: String, field: String, maximum: Int) throws(LatchkeyError) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw .invalidRequest("The \(field) must not be empty.") }
        // Control and direction-override characters would rewrite what a terminal or a page shows next to the name.
        guard !trimmed.unicodeScalars.contains(where: \.rewritesDisplay) else {
            throw .invalidRequest("The \(field) must not contain control characters.")
        }
        guard trimmed.count <= maximum else {
            throw .invalidRequest("The \(field) must be at most \(maximum) characters long.")
        }
        return trimmed
    }
}

/// A bearer token as stored: only its hash, so a copy of the database signs nobody in.
public struct SessionToken: Sendable, Equatable {
    public var tokenHash: String
    public var accountId: UUID
    public var createdAt: Date
    public var expiresAt: Date

    public init(tokenHash: String, accountId: UUID, createdAt: Date, expiresAt: Date) {
        self.tokenHash = tokenHash
        self.accountId = accountId
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }

    /// A new random token (256 bits, base64url) and its stored form.
    static func issue(for accountId: UUID, at now: Date, lifetime: TimeInterval) -> (token: String, stored: SessionToken) {
        let token = Base64URL.random(bytes: 32)
        return (token, SessionToken(tokenHash: hash(token), accountId: accountId, createdAt: now, expiresAt: now + lifetime))
    }

    /// Hex of SHA-256: every signed-in request computes it, so without `String(format:)` (5 % of a read's CPU, measured).
    static func hash(_ token: String) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(64)
        for byte in SHA256.hash(data: Data(token.utf8)) {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: hex, as: UTF8.self)
    }
}

/// Hashes account passwords slowly; behind a protocol so the domain does not pick the algorithm.
public protocol PasswordHasher: Sendable {
    func hash(_ password: String) async throws -> String
    func verify(_ password: String, against hash: String) async throws -> Bool
    /// Takes as long as `verify` and matches nothing: used for e-mails that have no account.
    func verifyDecoy(_ password: String) async
}

/// The most common passwords, shipped with the service (`Resources/common-passwords.txt`), lower-cased.
enum CommonPasswords {
    static let all: Set<String> = {
        guard let url = Bundle.module.url(forResource: "common-passwords", withExtension: "txt"),
            let text = try? String(contentsOf: url, encoding: .utf8)
        else { return [] }
        return Set(text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") })
    }()
}
