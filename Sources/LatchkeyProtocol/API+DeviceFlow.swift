import Foundation

extension API {
    /// `POST /sites/{id}/devices`: bind a connected device with the code on its label.
    public struct BindDevice: Codable, Sendable {
        public var serial: String
        public var verificationCode: String

        public init(serial: String, verificationCode: String) {
            self.serial = serial
            self.verificationCode = verificationCode
        }
    }

    /// `GET /devices/{serial}`: what the owner's client needs to seal a password to the device, and its status.
    public struct DeviceDetail: Codable, Sendable, Equatable {
        public var device: Device
        /// Ed25519, base64url: verifies proximity proofs and receipts.
        public var signingKey: String
        /// X25519, base64url: the HPKE recipient key the new password is sealed to.
        public var agreementKey: String
        public var bound: Bool

        public init(device: Device, signingKey: String, agreementKey: String, bound: Bool) {
            self.device = device
            self.signingKey = signingKey
            self.agreementKey = agreementKey
            self.bound = bound
        }
    }

    /// `POST /password-resets/{id}/grant`.
    public struct GrantRequest: Codable, Sendable {
        public var proximityProof: ProximityProof

        public init(proximityProof: ProximityProof) {
            self.proximityProof = proximityProof
        }
    }

    /// The grant and the sealed password, for the courier to carry to the device.
    public struct Grant: Codable, Sendable, Equatable {
        public var grant: String
        public var sealedPassword: String
        public var expiresAt: Date

        public init(grant: String, sealedPassword: String, expiresAt: Date) {
            self.grant = grant
            self.sealedPassword = sealedPassword
            self.expiresAt = expiresAt
        }
    }

    /// `POST /password-resets/{id}/receipt`.
    public struct ReceiptDelivery: Codable, Sendable {
        public var receipt: ResetReceipt

        public init(receipt: ResetReceipt) {
            self.receipt = receipt
        }
    }
}

/// Messages on the device channel (`GET /api/v1/devices/channel`, WebSocket, JSON text frames).
///
/// The platform opens with `challenge`; the device answers `hello`, signing the challenge; the platform answers
/// `welcome` (or `refused` and closes). Then the device reports receipts, and the platform tells it of bindings.
public enum DeviceChannelMessage: Codable, Sendable, Equatable {
    case challenge(nonce: String)
    case hello(DeviceHello)
    case welcome(platformKey: String, bound: Bool)
    case refused(code: APIErrorCode, message: String)
    case bound(siteId: UUID?)
    case receipt(ResetReceipt)
    case receiptAccepted(requestId: UUID)
}

extension DeviceChannelMessage {
    /// The message as one JSON text frame.
    public var text: String {
        get throws { String(decoding: try WireCoding.makeEncoder().encode(self), as: UTF8.self) }
    }

    /// A text frame read back; nil for anything that is not a channel message.
    public init?(text: String) {
        guard let message = try? WireCoding.makeDecoder().decode(DeviceChannelMessage.self, from: Data(text.utf8)) else { return nil }
        self = message
    }
}

/// Who a device says it is, proven by a signature over the platform's challenge.
public struct DeviceHello: Codable, Sendable, Equatable {
    public var serial: String
    public var model: String
    public var deviceType: DeviceType
    public var firmware: String
    /// Ed25519, base64url.
    public var signingKey: String
    /// X25519, base64url.
    public var agreementKey: String
    public var verificationCodeSalt: String
    public var verificationCodeHash: String
    /// Ed25519 signature of `ChannelProof.signedBytes(nonce:serial:)`, base64url.
    public var challengeSignature: String

    public init(
        serial: String, model: String, deviceType: DeviceType, firmware: String, signingKey: String, agreementKey: String,
        verificationCodeSalt: String, verificationCodeHash: String, challengeSignature: String
    ) {
        self.serial = serial
        self.model = model
        self.deviceType = deviceType
        self.firmware = firmware
        self.signingKey = signingKey
        self.agreementKey = agreementKey
        self.verificationCodeSalt = verificationCodeSalt
        self.verificationCodeHash = verificationCodeHash
        self.challengeSignature = challengeSignature
    }
}
