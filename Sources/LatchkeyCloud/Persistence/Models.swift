import FluentKit
import Foundation

// Fluent models: storage shapes only. The domain types in `Domain/` are what the rest of the service sees;
// each model converts to and from its domain type in `FluentStore`.

final class AccountModel: Model, @unchecked Sendable {
    static let schema = "accounts"
    @ID(key: .id) var id: UUID?
    @Field(key: "email") var email: String
    @Field(key: "name") var name: String
    @Field(key: "role") var role: String
    @Field(key: "language") var language: String
    @Field(key: "password_hash") var passwordHash: String
    @Field(key: "created_at") var createdAt: Date
    init() {}
}

final class SessionTokenModel: Model, @unchecked Sendable {
    static let schema = "session_tokens"
    @ID(custom: "token_hash", generatedBy: .user) var id: String?
    @Field(key: "account_id") var accountId: UUID
    @Field(key: "created_at") var createdAt: Date
    @Field(key: "expires_at") var expiresAt: Date
    init() {}
}

final class SiteModel: Model, @unchecked Sendable {
    static let schema = "sites"
    @ID(key: .id) var id: UUID?
    @Field(key: "owner_id") var ownerId: UUID
    @Field(key: "name") var name: String
    @OptionalField(key: "address") var address: String?
    @Field(key: "created_at") var createdAt: Date
    init() {}
}

final class SiteAuthorizationModel: Model, @unchecked Sendable {
    static let schema = "site_authorizations"
    @ID(key: .id) var id: UUID?
    @Field(key: "site_id") var siteId: UUID
    @Field(key: "installer_id") var installerId: UUID
    /// Comma-separated permission names: the set is small and always read whole.
    @Field(key: "permissions") var permissions: String
    @OptionalField(key: "expires_at") var expiresAt: Date?
    @Field(key: "created_at") var createdAt: Date
    init() {}
}

final class DeviceModel: Model, @unchecked Sendable {
    static let schema = "devices"
    @ID(custom: "serial", generatedBy: .user) var id: String?
    @Field(key: "model") var model: String
    @Field(key: "device_type") var deviceType: String
    @Field(key: "firmware") var firmware: String
    @OptionalField(key: "site_id") var siteId: UUID?
    @Field(key: "online") var online: Bool
    @OptionalField(key: "last_seen_at") var lastSeenAt: Date?
    @OptionalField(key: "signing_key") var signingKey: String?
    @OptionalField(key: "agreement_key") var agreementKey: String?
    @OptionalField(key: "certificate_chain") var certificateChain: String?
    /// JSON array of `host:port`.
    @OptionalField(key: "lan_addresses") var lanAddresses: String?
    @OptionalField(key: "connection_id") var connectionId: UUID?
    @OptionalField(key: "channel_address") var channelAddress: String?
    @OptionalField(key: "node_id") var nodeId: String?
    @Field(key: "keys_pinned") var keysPinned: Bool
    init() {}
}

final class PasswordResetRequestModel: Model, @unchecked Sendable {
    static let schema = "password_reset_requests"
    @ID(key: .id) var id: UUID?
    @Field(key: "device_serial") var deviceSerial: String
    @Field(key: "site_id") var siteId: UUID
    @Field(key: "owner_id") var ownerId: UUID
    @Field(key: "installer_id") var installerId: UUID
    @Field(key: "mode") var mode: String
    @Field(key: "status") var status: String
    @Field(key: "created_at") var createdAt: Date
    @Field(key: "expires_at") var expiresAt: Date
    @Field(key: "updated_at") var updatedAt: Date
    @OptionalField(key: "sealed_password") var sealedPassword: String?
    @OptionalField(key: "completed_at") var completedAt: Date?
    init() {}
}

final class ResetGrantModel: Model, @unchecked Sendable {
    static let schema = "reset_grants"
    @ID(custom: "nonce", generatedBy: .user) var id: String?
    @Field(key: "request_id") var requestId: UUID
    @Field(key: "device_serial") var deviceSerial: String
    @Field(key: "granted_at") var grantedAt: Date
    init() {}
}

final class NotificationModel: Model, @unchecked Sendable {
    static let schema = "notifications"
    @ID(key: .id) var id: UUID?
    @Field(key: "account_id") var accountId: UUID
    @Field(key: "category") var category: String
    @Field(key: "kind") var kind: String
    @Field(key: "title") var title: String
    @Field(key: "body") var body: String
    @OptionalField(key: "request_id") var requestId: UUID?
    @Field(key: "created_at") var createdAt: Date
    @Field(key: "read") var read: Bool
    init() {}
}

final class AuditEntryModel: Model, @unchecked Sendable {
    static let schema = "audit_entries"
    @ID(custom: "sequence", generatedBy: .database) var id: Int?
    @Field(key: "at") var at: Date
    @OptionalField(key: "actor_id") var actorId: UUID?
    @OptionalField(key: "site_id") var siteId: UUID?
    @OptionalField(key: "device_serial") var deviceSerial: String?
    @OptionalField(key: "request_id") var requestId: UUID?
    @Field(key: "action") var action: String
    @Field(key: "outcome") var outcome: String
    @OptionalField(key: "detail") var detail: String?
    init() {}
}

final class BindingGuardModel: Model, @unchecked Sendable {
    static let schema = "binding_guards"
    @ID(custom: "account_id", generatedBy: .user) var id: UUID?
    @Field(key: "failures") var failures: Int
    @OptionalField(key: "locked_until") var lockedUntil: Date?
    init() {}
}
