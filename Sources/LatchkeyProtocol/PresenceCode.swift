import Crypto
import Foundation

/// The platform's signed word that the owner approved a reset of this device. Until a device holds one, its local
/// page shows no presence code: a code can only ever serve a request someone approved.
public struct ApprovalNotice: Codable, Sendable, Equatable {
    public var requestId: UUID
    public var serial: String
    /// Who asked for the reset, as the device's page shows it.
    public var requestedBy: String
    public var mode: ResetMode
    public var deadline: Date
    /// By the platform key, base64url.
    public var signature: String

    public static func sign(requestId: UUID, serial: String, requestedBy: String, mode: ResetMode, deadline: Date,
                            with key: Curve25519.Signing.PrivateKey) throws -> ApprovalNotice {
        var notice = ApprovalNotice(requestId: requestId, serial: serial, requestedBy: requestedBy, mode: mode, deadline: deadline,
                                    signature: "")
        notice.signature = Base64URL.encode(try key.signature(for: notice.signedBytes))
        return notice
    }

    public func isSigned(by key: Curve25519.Signing.PublicKey) -> Bool {
        guard let signature = Base64URL.decode(signature) else { return false }
        return key.isValidSignature(signature, for: signedBytes)
    }

    var signedBytes: Data {
        let fields = ["latchkey/approval-notice/v1", requestId.uuidString.lowercased(), serial, requestedBy, mode.rawValue,
                      String(Int(deadline.timeIntervalSince1970))]
        return Data(fields.joined(separator: "\n").utf8)
    }
}

/// The browser path's delivery: the platform sends grant, sealed password and the code the courier typed to the device
/// over its channel; the device compares the code and applies.
public struct PresenceDelivery: Codable, Sendable, Equatable {
    /// Names the answer, so it finds its way back to the call that waits for it.
    public var deliveryId: String
    public var requestId: UUID
    public var grant: String
    public var sealedPassword: String
    public var presenceCode: String

    public init(deliveryId: String, requestId: UUID, grant: String, sealedPassword: String, presenceCode: String) {
        self.deliveryId = deliveryId
        self.requestId = requestId
        self.grant = grant
        self.sealedPassword = sealedPassword
        self.presenceCode = presenceCode
    }
}

/// The device's answer to a delivery: its signed receipt, or why it refused.
public struct PresenceDeliveryAnswer: Codable, Sendable, Equatable {
    public var deliveryId: String
    public var receipt: ResetReceipt?
    public var refusal: APIErrorBody.Detail?

    public init(deliveryId: String, receipt: ResetReceipt?, refusal: APIErrorBody.Detail?) {
        self.deliveryId = deliveryId
        self.receipt = receipt
        self.refusal = refusal
    }
}

/// What a grant for the browser path names instead of a proximity nonce: the presence code is the proof of presence,
/// and the device spends each such nonce once.
public enum PresenceGrant {
    public static let noncePrefix = "presence:"

    public static func nonce() -> String { noncePrefix + Base64URL.random(bytes: 16) }
}
