import Crypto
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
        /// The manufacturer's chain, PEM, leaf first. Clients take both keys from it, never from the fields above.
        public var certificateChain: String?

        public init(device: Device, signingKey: String, agreementKey: String, bound: Bool, certificateChain: String?) {
            self.device = device
            self.signingKey = signingKey
            self.agreementKey = agreementKey
            self.bound = bound
            self.certificateChain = certificateChain
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

    /// `POST /password-resets/{id}/presence`: the code the courier read on the device's own page.
    public struct PresenceCodeDelivery: Codable, Sendable {
        public var presenceCode: String

        public init(presenceCode: String) {
            self.presenceCode = presenceCode
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
/// The platform opens with `challenge`; the device answers `hello` with its certificate chain, signing the challenge;
/// the platform answers `welcome`, signed with its key over the device's own nonce (or `refused` and closes). Then the
/// device reports receipts and answers code checks, and the platform tells it of bindings.
public enum DeviceChannelMessage: Codable, Sendable, Equatable {
    case challenge(nonce: String)
    case hello(DeviceHello)
    case welcome(PlatformWelcome)
    case refused(code: APIErrorCode, message: String)
    case bound(siteId: UUID?)
    case receipt(ResetReceipt)
    case receiptAccepted(requestId: UUID)
    case checkCode(CodeCheck)
    case codeChecked(CodeCheckAnswer)
    case approvalNotice(ApprovalNotice)
    case deliver(PresenceDelivery)
    case delivered(PresenceDeliveryAnswer)
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

/// Who a device says it is: its manufacturer's certificate chain, and a signature over the platform's challenge by
/// the key that chain certifies.
public struct DeviceHello: Codable, Sendable, Equatable {
    public var serial: String
    public var deviceType: DeviceType
    public var firmware: String
    /// PEM, leaf first; the model and both keys come from it.
    public var certificateChain: String
    /// Ed25519 signature of `ChannelProof.signedBytes(nonce:serial:)`, base64url.
    public var challengeSignature: String
    /// The device's own fresh nonce, which the platform signs in its welcome.
    public var deviceNonce: String
    /// `host:port` of its local API on each LAN it is on.
    public var lanAddresses: [String]

    public init(serial: String, deviceType: DeviceType, firmware: String, certificateChain: String, challengeSignature: String,
                deviceNonce: String, lanAddresses: [String]) {
        self.serial = serial
        self.deviceType = deviceType
        self.firmware = firmware
        self.certificateChain = certificateChain
        self.challengeSignature = challengeSignature
        self.deviceNonce = deviceNonce
        self.lanAddresses = lanAddresses
    }
}

/// The platform's answer to a hello: its key, proven by a signature over the device's nonce, and — after the operator
/// rotated keys — the statement by the previous key that introduces this one.
public struct PlatformWelcome: Codable, Sendable, Equatable {
    /// Ed25519, base64url.
    public var platformKey: String
    public var bound: Bool
    /// By `platformKey`, over `signedBytes(deviceNonce:serial:)`, base64url.
    public var signature: String
    public var rotation: KeyRotation?

    public init(platformKey: String, bound: Bool, signature: String, rotation: KeyRotation?) {
        self.platformKey = platformKey
        self.bound = bound
        self.signature = signature
        self.rotation = rotation
    }

    public static func sign(deviceNonce: String, serial: String, bound: Bool, with key: Curve25519.Signing.PrivateKey,
                            rotation: KeyRotation?) throws -> PlatformWelcome {
        let platformKey = Base64URL.encode(key.publicKey.rawRepresentation)
        let signature = try key.signature(for: signedBytes(deviceNonce: deviceNonce, serial: serial, platformKey: platformKey))
        return PlatformWelcome(platformKey: platformKey, bound: bound, signature: Base64URL.encode(signature), rotation: rotation)
    }

    /// True when the welcome's key signed this device's nonce.
    public func isSigned(deviceNonce: String, serial: String) -> Bool {
        guard let key = Base64URL.decode(platformKey).flatMap({ try? Curve25519.Signing.PublicKey(rawRepresentation: $0) }),
            let signature = Base64URL.decode(signature)
        else { return false }
        return key.isValidSignature(signature, for: Self.signedBytes(deviceNonce: deviceNonce, serial: serial, platformKey: platformKey))
    }

    static func signedBytes(deviceNonce: String, serial: String, platformKey: String) -> Data {
        Data("latchkey/welcome/v1\n\(deviceNonce)\n\(serial)\n\(platformKey)".utf8)
    }
}

/// The previous platform key's word that a new key speaks for the platform: the only way a device re-pins.
public struct KeyRotation: Codable, Sendable, Equatable {
    public var previousKey: String
    public var newKey: String
    public var signature: String

    public init(previousKey: String, newKey: String, signature: String) {
        self.previousKey = previousKey
        self.newKey = newKey
        self.signature = signature
    }

    public static func sign(from previous: Curve25519.Signing.PrivateKey, to new: Curve25519.Signing.PublicKey) throws -> KeyRotation {
        let previousKey = Base64URL.encode(previous.publicKey.rawRepresentation)
        let newKey = Base64URL.encode(new.rawRepresentation)
        let signature = try previous.signature(for: signedBytes(previousKey: previousKey, newKey: newKey))
        return KeyRotation(previousKey: previousKey, newKey: newKey, signature: Base64URL.encode(signature))
    }

    /// True when `previousKey` signed the introduction of `newKey`.
    public var isValid: Bool {
        guard let key = Base64URL.decode(previousKey).flatMap({ try? Curve25519.Signing.PublicKey(rawRepresentation: $0) }),
            let signature = Base64URL.decode(signature)
        else { return false }
        return key.isValidSignature(signature, for: Self.signedBytes(previousKey: previousKey, newKey: newKey))
    }

    static func signedBytes(previousKey: String, newKey: String) -> Data {
        Data("latchkey/key-rotation/v1\n\(previousKey)\n\(newKey)".utf8)
    }
}

/// A code someone typed, sent to the device to compare: the platform keeps no code and no hash of one.
public struct CodeCheck: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case label }
    /// Fresh for each check; the answer names it, so an old answer cannot be replayed.
    public var nonce: String
    public var kind: Kind
    public var accountId: UUID
    /// The site the device is being bound to.
    public var subjectId: UUID
    public var code: String

    public init(nonce: String, kind: Kind, accountId: UUID, subjectId: UUID, code: String) {
        self.nonce = nonce
        self.kind = kind
        self.accountId = accountId
        self.subjectId = subjectId
        self.code = code
    }
}

/// The device's signed yes or no; `retryAfter` (seconds) when it refused to compare because of earlier wrong codes.
public struct CodeCheckAnswer: Codable, Sendable, Equatable {
    public var nonce: String
    public var matches: Bool
    public var retryAfter: Int?
    public var signature: String

    public init(nonce: String, matches: Bool, retryAfter: Int?, signature: String) {
        self.nonce = nonce
        self.matches = matches
        self.retryAfter = retryAfter
        self.signature = signature
    }

    public static func sign(_ check: CodeCheck, serial: String, matches: Bool, retryAfter: Int?,
                            with key: Curve25519.Signing.PrivateKey) throws -> CodeCheckAnswer {
        let signature = try key.signature(for: signedBytes(check, serial: serial, matches: matches, retryAfter: retryAfter))
        return CodeCheckAnswer(nonce: check.nonce, matches: matches, retryAfter: retryAfter, signature: Base64URL.encode(signature))
    }

    /// True when the device's key signed this answer to exactly this check.
    public func isSigned(for check: CodeCheck, serial: String, by key: Curve25519.Signing.PublicKey) -> Bool {
        guard nonce == check.nonce, let signature = Base64URL.decode(signature) else { return false }
        return key.isValidSignature(signature, for: Self.signedBytes(check, serial: serial, matches: matches, retryAfter: retryAfter))
    }

    static func signedBytes(_ check: CodeCheck, serial: String, matches: Bool, retryAfter: Int?) -> Data {
        let fields = [
            "latchkey/code-check/v1", check.nonce, serial, check.kind.rawValue, check.accountId.uuidString.lowercased(),
            check.subjectId.uuidString.lowercased(), matches ? "match" : "mismatch", retryAfter.map(String.init) ?? "-",
        ]
        return Data(fields.joined(separator: "\n").utf8)
    }
}
