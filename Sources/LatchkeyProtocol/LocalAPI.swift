import Foundation

/// The wire types of a device's own HTTP API (`/local/v1/…`), reachable on its LAN only.
public enum LocalAPI {
    public static let pathPrefix = "/local/v1"

    /// `GET /local/v1/info`.
    public struct Info: Codable, Sendable, Equatable {
        public var serial: String
        public var model: String
        public var deviceType: DeviceType
        public var firmware: String
        public var activated: Bool
        public var passwordResetAbility: Bool
        public var signingKey: String
        public var agreementKey: String
        /// The manufacturer's certificate chain, PEM, leaf first: what certifies both keys.
        public var certificateChain: String?

        public init(serial: String, model: String, deviceType: DeviceType, firmware: String, activated: Bool,
                    passwordResetAbility: Bool, signingKey: String, agreementKey: String, certificateChain: String?) {
            self.serial = serial
            self.model = model
            self.deviceType = deviceType
            self.firmware = firmware
            self.activated = activated
            self.passwordResetAbility = passwordResetAbility
            self.signingKey = signingKey
            self.agreementKey = agreementKey
            self.certificateChain = certificateChain
        }
    }

    /// `POST /local/v1/presence-code`: a single-use code for the approved request, to type into the portal.
    public struct PresenceCode: Codable, Sendable, Equatable {
        public var code: String
        public var requestId: UUID
        public var requestedBy: String
        public var mode: ResetMode
        public var expiresAt: Date

        public init(code: String, requestId: UUID, requestedBy: String, mode: ResetMode, expiresAt: Date) {
            self.code = code
            self.requestId = requestId
            self.requestedBy = requestedBy
            self.mode = mode
            self.expiresAt = expiresAt
        }
    }

    /// `POST /local/v1/password-reset`: what the courier carries from the platform.
    public struct ApplyReset: Codable, Sendable {
        public var grant: String
        public var sealedPassword: String

        public init(grant: String, sealedPassword: String) {
            self.grant = grant
            self.sealedPassword = sealedPassword
        }
    }

    /// `POST /local/v1/login`.
    public struct Login: Codable, Sendable {
        public var username: String
        public var password: String

        public init(username: String, password: String) {
            self.username = username
            self.password = password
        }
    }

    /// A signed-in session on the device; a password reset ends them all.
    public struct Session: Codable, Sendable {
        public var session: String

        public init(session: String) {
            self.session = session
        }
    }

    /// `POST /local/v1/activate`: a new device has no password until one that meets the policy is set.
    public struct Activate: Codable, Sendable {
        public var password: String

        public init(password: String) {
            self.password = password
        }
    }
}
