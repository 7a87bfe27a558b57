import Crypto
import Foundation

/// A device's answer to "are you here?": a fresh nonce signed by the device key. Only something on the device's LAN
/// can ask for one, so presenting it to the platform shows the courier stands next to the device.
public struct ProximityProof: Codable, Sendable, Equatable {
    public var serial: String
    public var nonce: String
    public var issuedAt: Date
    public var signature: String

    public init(serial: String, nonce: String, issuedAt: Date, signature: String) {
        self.serial = serial
        self.nonce = nonce
        self.issuedAt = issuedAt
        self.signature = signature
    }

    public static func sign(serial: String, nonce: String, issuedAt: Date, with key: Curve25519.Signing.PrivateKey) throws -> ProximityProof {
        let unsigned = ProximityProof(serial: serial, nonce: nonce, issuedAt: issuedAt, signature: "")
        return ProximityProof(serial: serial, nonce: nonce, issuedAt: issuedAt,
                              signature: Base64URL.encode(try key.signature(for: unsigned.signedBytes)))
    }

    public func isSigned(by key: Curve25519.Signing.PublicKey) -> Bool {
        guard let signature = Base64URL.decode(signature) else { return false }
        return key.isValidSignature(signature, for: signedBytes)
    }

    /// Whole seconds: what survives an RFC 3339 round trip is what gets signed.
    var signedBytes: Data {
        Data("latchkey/proximity/v1\n\(serial)\n\(nonce)\n\(Int(issuedAt.timeIntervalSince1970))".utf8)
    }
}

/// The device's signed word that it applied a reset. The first valid one completes the request, whichever way it
/// arrives: from the courier, or over the device's own channel.
public struct ResetReceipt: Codable, Sendable, Equatable {
    public var requestId: UUID
    public var serial: String
    public var nonce: String
    public var appliedAt: Date
    public var signature: String

    public init(requestId: UUID, serial: String, nonce: String, appliedAt: Date, signature: String) {
        self.requestId = requestId
        self.serial = serial
        self.nonce = nonce
        self.appliedAt = appliedAt
        self.signature = signature
    }

    public static func sign(requestId: UUID, serial: String, nonce: String, appliedAt: Date,
                            with key: Curve25519.Signing.PrivateKey) throws -> ResetReceipt {
        let unsigned = ResetReceipt(requestId: requestId, serial: serial, nonce: nonce, appliedAt: appliedAt, signature: "")
        return ResetReceipt(requestId: requestId, serial: serial, nonce: nonce, appliedAt: appliedAt,
                            signature: Base64URL.encode(try key.signature(for: unsigned.signedBytes)))
    }

    public func isSigned(by key: Curve25519.Signing.PublicKey) -> Bool {
        guard let signature = Base64URL.decode(signature) else { return false }
        return key.isValidSignature(signature, for: signedBytes)
    }

    var signedBytes: Data {
        Data("latchkey/receipt/v1\n\(requestId.uuidString.lowercased())\n\(serial)\n\(nonce)\n\(Int(appliedAt.timeIntervalSince1970))".utf8)
    }
}

/// What a device proves when it opens its channel: that it holds the private half of the signing key it reports,
/// by signing the platform's fresh nonce.
public enum ChannelProof {
    public static func signedBytes(nonce: String, serial: String) -> Data {
        Data("latchkey/channel/v1\n\(nonce)\n\(serial)".utf8)
    }
}

/// The verification code on a device's label: six letters only the device compares.
public enum VerificationCode {
    public static let alphabet = Array("ABCDEFGHJKLMNPQRSTUVWXYZ")

    /// Six capital letters, as printed on the label (I and O left out: they read as 1 and 0).
    public static func random() -> String {
        String((0..<6).map { _ in alphabet.randomElement()! })
    }

    public static func isWellFormed(_ code: String) -> Bool {
        code.count == 6 && code.allSatisfy { alphabet.contains($0) }
    }
}
