import Foundation

extension API {
    /// `POST /sites`.
    public struct CreateSite: Codable, Sendable {
        public var name: String
        public var address: String?

        public init(name: String, address: String? = nil) {
            self.name = name
            self.address = address
        }
    }

    /// A site: the owner's place where devices are installed. The owner also sees who is authorized on it.
    public struct Site: Codable, Sendable, Equatable {
        public var id: UUID
        public var name: String
        public var address: String?
        public var ownerId: UUID
        public var createdAt: Date
        /// Present for the owner only.
        public var authorizations: [SiteAuthorization]?

        public init(
            id: UUID, name: String, address: String?, ownerId: UUID, createdAt: Date,
            authorizations: [SiteAuthorization]? = nil
        ) {
            self.id = id
            self.name = name
            self.address = address
            self.ownerId = ownerId
            self.createdAt = createdAt
            self.authorizations = authorizations
        }
    }

    /// `POST /sites/{id}/authorizations`: let an installer work on the site, optionally until a time.
    public struct GrantAuthorization: Codable, Sendable {
        public var installerEmail: String
        public var permissions: [Permission]
        public var expiresAt: Date?

        public init(installerEmail: String, permissions: [Permission], expiresAt: Date? = nil) {
            self.installerEmail = installerEmail
            self.permissions = permissions
            self.expiresAt = expiresAt
        }
    }

    /// An installer's standing on a site.
    public struct SiteAuthorization: Codable, Sendable, Equatable {
        public var siteId: UUID
        public var installerId: UUID
        public var installerEmail: String
        public var installerName: String
        public var permissions: [Permission]
        public var expiresAt: Date?
        public var createdAt: Date

        public init(
            siteId: UUID, installerId: UUID, installerEmail: String, installerName: String,
            permissions: [Permission], expiresAt: Date?, createdAt: Date
        ) {
            self.siteId = siteId
            self.installerId = installerId
            self.installerEmail = installerEmail
            self.installerName = installerName
            self.permissions = permissions
            self.expiresAt = expiresAt
            self.createdAt = createdAt
        }
    }
}
