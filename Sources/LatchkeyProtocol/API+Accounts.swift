import Foundation

/// The wire types of the HTTP API, shared by the service, the client SDK and the device.
public enum API {}

extension API {
    /// `POST /accounts`.
    public struct SignUp: Codable, Sendable {
        public var email: String
        public var password: String
        public var name: String
        public var role: AccountRole
        /// The language of the account's e-mails; English when absent.
        public var language: Language?

        public init(email: String, password: String, name: String, role: AccountRole, language: Language? = nil) {
            self.email = email
            self.password = password
            self.name = name
            self.role = role
            self.language = language
        }
    }

    /// An account as others may see it: never its password hash.
    public struct Account: Codable, Sendable, Equatable {
        public var id: UUID
        public var email: String
        public var name: String
        public var role: AccountRole
        public var language: Language
        public var createdAt: Date

        public init(id: UUID, email: String, name: String, role: AccountRole, language: Language, createdAt: Date) {
            self.id = id
            self.email = email
            self.name = name
            self.role = role
            self.language = language
            self.createdAt = createdAt
        }
    }

    /// `POST /sessions`.
    public struct SignIn: Codable, Sendable {
        public var email: String
        public var password: String

        public init(email: String, password: String) {
            self.email = email
            self.password = password
        }
    }

    /// A bearer token and when it stops working.
    public struct Session: Codable, Sendable {
        public var token: String
        public var expiresAt: Date
        public var account: Account

        public init(token: String, expiresAt: Date, account: Account) {
            self.token = token
            self.expiresAt = expiresAt
            self.account = account
        }
    }
}
