import Foundation

extension API {
    /// `POST /devices/{serial}/password-resets`.
    public struct RequestPasswordReset: Codable, Sendable {
        public var mode: ResetMode

        public init(mode: ResetMode) {
            self.mode = mode
        }
    }

    /// A reset request as both sides see it. The sealed password is never part of it.
    public struct PasswordReset: Codable, Sendable, Equatable {
        public var id: UUID
        public var deviceSerial: String
        public var siteId: UUID
        public var installerId: UUID
        public var mode: ResetMode
        public var status: ResetStatus
        public var createdAt: Date
        public var expiresAt: Date
        public var ownerEmailMasked: String
        /// Who must stand on the device's LAN, said to the person reading the answer.
        public var reminder: String?

        public init(
            id: UUID, deviceSerial: String, siteId: UUID, installerId: UUID, mode: ResetMode, status: ResetStatus,
            createdAt: Date, expiresAt: Date, ownerEmailMasked: String, reminder: String? = nil
        ) {
            self.id = id
            self.deviceSerial = deviceSerial
            self.siteId = siteId
            self.installerId = installerId
            self.mode = mode
            self.status = status
            self.createdAt = createdAt
            self.expiresAt = expiresAt
            self.ownerEmailMasked = ownerEmailMasked
            self.reminder = reminder
        }
    }

    /// `POST /password-resets/{id}/approve`: the new password, sealed to the device's key by the owner's client.
    public struct ApprovePasswordReset: Codable, Sendable {
        public var sealedPassword: String

        public init(sealedPassword: String) {
            self.sealedPassword = sealedPassword
        }
    }

    /// An entry of the notification inbox.
    public struct Notification: Codable, Sendable, Equatable {
        public var id: UUID
        public var category: NotificationCategory
        public var kind: NotificationKind
        public var title: String
        public var body: String
        public var requestId: UUID?
        public var createdAt: Date
        public var read: Bool

        public init(
            id: UUID, category: NotificationCategory, kind: NotificationKind, title: String, body: String,
            requestId: UUID?, createdAt: Date, read: Bool
        ) {
            self.id = id
            self.category = category
            self.kind = kind
            self.title = title
            self.body = body
            self.requestId = requestId
            self.createdAt = createdAt
            self.read = read
        }
    }

    /// The platform's public signing keys, as a JWK set, so devices and clients can verify grants.
    public struct KeySet: Codable, Sendable {
        public struct Key: Codable, Sendable, Equatable {
            public var kty: String
            public var crv: String
            public var x: String
            public var kid: String
            public var alg: String
            public var use: String

            public init(kty: String, crv: String, x: String, kid: String, alg: String, use: String) {
                self.kty = kty
                self.crv = crv
                self.x = x
                self.kid = kid
                self.alg = alg
                self.use = use
            }
        }

        public var keys: [Key]

        public init(keys: [Key]) {
            self.keys = keys
        }
    }
}
