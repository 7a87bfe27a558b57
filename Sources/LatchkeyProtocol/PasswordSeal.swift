import Crypto
import Foundation

/// Seals the new admin password to the device's X25519 key with HPKE, so that the platform and the installer only
/// ever relay ciphertext.
///
/// One suite, the one a browser's WebCrypto can compose too: RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256),
/// HKDF-SHA256, AES-128-GCM. `info` binds the seal to one reset request and one device, so a seal made for one opens
/// for no other. On the wire: `v2.` then base64url(encapsulated key ‖ ciphertext); empty AAD.
public enum PasswordSeal {
    public static let ciphersuite = HPKE.Ciphersuite(kem: .Curve25519_HKDF_SHA256, kdf: .HKDF_SHA256, aead: .AES_GCM_128)
    /// Names the suite and layout; a seal without it was made with the retired ChaCha20-Poly1305 suite.
    public static let prefix = "v2."
    static let encapsulatedKeySize = 32
    static let tagSize = 16

    /// Why a seal did not open; deliberately vague, as a wrong key and a tampered seal look alike.
    public enum Failure: Error, Equatable {
        case malformed
        case cannotOpen
        /// Sealed with the suite Latchkey used before: the owner must approve again.
        case retiredSuite
    }

    public static func seal(_ password: String, to recipient: Curve25519.KeyAgreement.PublicKey, requestId: UUID,
                            serial: String) throws -> String {
        var sender = try HPKE.Sender(recipientKey: recipient, ciphersuite: ciphersuite, info: info(requestId: requestId, serial: serial))
        let ciphertext = try sender.seal(Data(password.utf8))
        return prefix + Base64URL.encode(sender.encapsulatedKey + ciphertext)
    }

    public static func open(_ sealed: String, with key: Curve25519.KeyAgreement.PrivateKey, requestId: UUID,
                            serial: String) throws(Failure) -> String {
        let (encapsulatedKey, ciphertext) = try parts(of: sealed)
        let clear = try open(encapsulatedKey: encapsulatedKey, ciphertext: ciphertext, info: info(requestId: requestId, serial: serial),
                             aad: Data(), with: key)
        guard let password = String(data: clear, encoding: .utf8) else { throw .malformed }
        return password
    }

    /// Whether `sealed` has the shape of a seal of this suite: what the platform checks, as it cannot open it.
    public static func isWellFormed(_ sealed: String) -> Bool {
        (try? parts(of: sealed)) != nil
    }

    /// The suite's single-shot open, as RFC 9180 defines it; `open(_:with:requestId:serial:)` is this with
    /// Latchkey's `info` and layout.
    public static func open(encapsulatedKey: Data, ciphertext: Data, info: Data, aad: Data,
                            with key: Curve25519.KeyAgreement.PrivateKey) throws(Failure) -> Data {
        do {
            var recipient = try HPKE.Recipient(privateKey: key, ciphersuite: ciphersuite, info: info, encapsulatedKey: encapsulatedKey)
            return try recipient.open(ciphertext, authenticating: aad)
        } catch {
            throw .cannotOpen
        }
    }

    /// `latchkey/password-reset/v2`, the request id (lower case) and the serial, one per line.
    public static func info(requestId: UUID, serial: String) -> Data {
        Data("latchkey/password-reset/v2\n\(requestId.uuidString.lowercased())\n\(serial)".utf8)
    }

    private static func parts(of sealed: String) throws(Failure) -> (Data, Data) {
        guard sealed.hasPrefix(prefix) else {
            if let bytes = Base64URL.decode(sealed), bytes.count > encapsulatedKeySize + tagSize { throw .retiredSuite }
            throw .malformed
        }
        guard let bytes = Base64URL.decode(String(sealed.dropFirst(prefix.count))),
            bytes.count > encapsulatedKeySize + tagSize
        else { throw .malformed }
        return (bytes.prefix(encapsulatedKeySize), bytes.dropFirst(encapsulatedKeySize))
    }
}

/// base64url without padding (RFC 4648 §5), the encoding of every key, nonce and signature on Latchkey's wire.
public enum Base64URL {
    /// One pass over the standard encoding's bytes (three `replacingOccurrences` went through NSString: measured at 8 %
    /// of a portal page's CPU, which makes a CSRF token for each new visitor).
    public static func encode(_ data: some DataProtocol) -> String {
        let standard = Data(data).base64EncodedData()
        var url: [UInt8] = []
        url.reserveCapacity(standard.count)
        for byte in standard {
            switch byte {
            case UInt8(ascii: "+"): url.append(UInt8(ascii: "-"))
            case UInt8(ascii: "/"): url.append(UInt8(ascii: "_"))
            case UInt8(ascii: "="): continue
            default: url.append(byte)
            }
        }
        return String(decoding: url, as: UTF8.self)
    }

    /// The same single pass back (the checks and replacements through NSString were 3 % of the server's CPU in a
    /// complete reset, which decodes keys, seals, proofs and signatures). Padding, `+` and `/` are refused: they are
    /// not base64url.
    public static func decode(_ text: String) -> Data? {
        var base64: [UInt8] = []
        base64.reserveCapacity(text.utf8.count + 3)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "="), UInt8(ascii: "+"), UInt8(ascii: "/"): return nil
            case UInt8(ascii: "-"): base64.append(UInt8(ascii: "+"))
            case UInt8(ascii: "_"): base64.append(UInt8(ascii: "/"))
            default: base64.append(byte)
            }
        }
        base64.append(contentsOf: repeatElement(UInt8(ascii: "="), count: (4 - base64.count % 4) % 4))
        return Data(base64Encoded: Data(base64))
    }

    /// A fresh random value of `bytes` bytes, for nonces.
    public static func random(bytes: Int = 32) -> String {
        encode(SymmetricKey(size: SymmetricKeySize(bitCount: bytes * 8)).withUnsafeBytes { Data($0) })
    }
}
