import Crypto
import Foundation
import JWTKit

/// The claims of a reset grant: the platform's signed permission (JWS, EdDSA) for one device to apply one request's
/// sealed password, once, against the nonce the device itself issued, before a short expiry.
public struct ResetGrantClaims: JWTPayload, Equatable {
    public static let issuerName = "latchkey"

    public var iss: IssuerClaim
    /// The device serial.
    public var sub: SubjectClaim
    /// The reset request id.
    public var jti: IDClaim
    public var iat: IssuedAtClaim
    public var exp: ExpirationClaim
    /// The device's nonce from the proximity proof; the device accepts a grant only for a nonce it has outstanding.
    public var nonce: String

    public init(requestId: UUID, serial: String, nonce: String, issuedAt: Date, expiresAt: Date) {
        self.iss = IssuerClaim(value: Self.issuerName)
        self.sub = SubjectClaim(value: serial)
        self.jti = IDClaim(value: requestId.uuidString.lowercased())
        self.iat = IssuedAtClaim(value: issuedAt)
        self.exp = ExpirationClaim(value: expiresAt)
        self.nonce = nonce
    }

    public var requestId: UUID? { UUID(uuidString: jti.value) }
    public var serial: String { sub.value }

    /// Expiry is checked by the verifier against its own clock (`ResetGrant.verify`), not here.
    public func verify(using algorithm: some JWTAlgorithm) async throws {
        guard iss.value == Self.issuerName else { throw JWTError.claimVerificationFailure(failedClaim: iss, reason: "not issued by Latchkey") }
    }
}

/// Signs and verifies reset grants with Ed25519 keys.
public enum ResetGrant {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case badSignature
        case expired
        case wrongDevice
        case malformed

        public var description: String {
            switch self {
            case .badSignature: "the grant is not signed by the platform"
            case .expired: "the grant has expired"
            case .wrongDevice: "the grant is for another device"
            case .malformed: "the grant is not a Latchkey grant"
            }
        }
    }

    public static func sign(_ claims: ResetGrantClaims, with key: Curve25519.Signing.PrivateKey) async throws -> String {
        let keys = JWTKeyCollection()
        let kid = JWKIdentifier(string: keyID(of: key.publicKey))
        await keys.add(eddsa: EdDSA.PrivateKey(backing: key), kid: kid)
        return try await keys.sign(claims, kid: kid)
    }

    /// The key id in grants' headers and in the platform's JWK set: the first 8 bytes of the key's SHA-256, in hex.
    public static func keyID(of key: Curve25519.Signing.PublicKey) -> String {
        SHA256.hash(data: key.rawRepresentation).prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    /// Checks the platform signature, the device it names and the expiry against `now`.
    public static func verify(_ token: String, platformKey: Curve25519.Signing.PublicKey, serial: String, now: Date) async throws(Failure) -> ResetGrantClaims {
        let keys = JWTKeyCollection()
        await keys.add(eddsa: EdDSA.PublicKey(backing: platformKey), kid: JWKIdentifier(string: keyID(of: platformKey)))
        let claims: ResetGrantClaims
        do {
            claims = try await keys.verify(token, as: ResetGrantClaims.self)
        } catch let error as JWTError where error.errorType == .signatureVerificationFailed {
            throw .badSignature
        } catch {
            throw .malformed
        }
        guard claims.requestId != nil else { throw .malformed }
        guard claims.serial == serial else { throw .wrongDevice }
        guard now < claims.exp.value else { throw .expired }
        return claims
    }
}
