import Crypto
import Foundation

/// Seals the new admin password to the device's X25519 key with HPKE (RFC 9180, X25519 / HKDF-SHA256 /
/// ChaCha20-Poly1305), so that the platform and the installer only ever relay ciphertext.
///
/// The seal is bound to one reset request through HPKE's `info`: a seal made for one request opens for no other.
public enum PasswordSeal {
    public static let ciphersuite = HPKE.Ciphersuite(kem: .Curve25519_HKDF_SHA256, kdf: .HKDF_SHA256, aead: .chaChaPoly)

    /// Why a seal did not open; deliberately vague, as a wrong key and a tampered seal look alike.
    public enum Failure: Error, Equatable {
        case malformed
        case cannotOpen
    }

    /// `base64url(encapsulated key ‖ ciphertext)`.
    public static func seal(_ password: String, to recipient: Curve25519.KeyAgreement.PublicKey, requestId: UUID) throws -> String {
        var sender = try HPKE.Sender(recipientKey: recipient, ciphersuite: ciphersuite, info: info(requestId))
        let ciphertext = try sender.seal(Data(password.utf8))
        return Base64URL.encode(sender.encapsulatedKey + ciphertext)
    }

    public static func open(_ sealed: String, with key: Curve25519.KeyAgreement.PrivateKey, requestId: UUID) throws(Failure) -> String {
        guard let bytes = Base64URL.decode(sealed), bytes.count > 32 + 16 else { throw .malformed }
        do {
            var recipient = try HPKE.Recipient(
                privateKey: key, ciphersuite: ciphersuite, info: info(requestId), encapsulatedKey: bytes.prefix(32))
            let clear = try recipient.open(bytes.dropFirst(32))
            guard let password = String(data: clear, encoding: .utf8) else { throw Failure.malformed }
            return password
        } catch {
            throw .cannotOpen
        }
    }

    private static func info(_ requestId: UUID) -> Data {
        Data("latchkey/password-reset/v1/\(requestId.uuidString.lowercased())".utf8)
    }
}

/// base64url without padding (RFC 4648 §5), the encoding of every key, nonce and signature on Latchkey's wire.
public enum Base64URL {
    public static func encode(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public static func decode(_ text: String) -> Data? {
        guard !text.contains("="), !text.contains("+"), !text.contains("/") else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64)
    }

    /// A fresh random value of `bytes` bytes, for nonces.
    public static func random(bytes: Int = 32) -> String {
        encode(SymmetricKey(size: SymmetricKeySize(bitCount: bytes * 8)).withUnsafeBytes { Data($0) })
    }
}
