import Crypto
import Foundation
import SwiftASN1
import X509

/// The device certificate profile of DESIGN.md ("Device identity"): what a manufacturer writes into a device's
/// certificate and what the platform and clients read back out of it.
public enum DeviceCertificateProfile {
    /// The raw X25519 agreement key, as an OCTET STRING. DESIGN.md names `2.25.39410609991210900762091206433146260004`,
    /// but swift-asn1 (and so swift-certificates, which must parse every extension of a chain it verifies) refuses an
    /// arc wider than 64 bits: no certificate carrying that OID can be issued or verified with them. This is the same
    /// UUID arc cut to the 19 digits that fit, `2.25.3941060999121090076`.
    public static let agreementKeyExtension: ASN1ObjectIdentifier = [2, 25, 3_941_060_999_121_090_076]
    /// Subject `serialNumber` (2.5.4.5): the device's serial.
    public static let serialNumberAttribute: ASN1ObjectIdentifier = [2, 5, 4, 5]

    /// The extension that carries the agreement key.
    public static func agreementKeyExtensionValue(_ key: Curve25519.KeyAgreement.PublicKey) throws -> Certificate.Extension {
        var serializer = DER.Serializer()
        try serializer.serialize(ASN1OctetString(contentBytes: ArraySlice(key.rawRepresentation)))
        return Certificate.Extension(oid: agreementKeyExtension, critical: false, value: ArraySlice(serializer.serializedBytes))
    }
}

/// A device whose certificate chain verified to a trusted manufacturer root: the only identity the platform and
/// clients take for it.
public struct AttestedDevice: Sendable, Equatable {
    public var serial: String
    public var model: String
    public var signingKey: Curve25519.Signing.PublicKey
    public var agreementKey: Curve25519.KeyAgreement.PublicKey
    /// Leaf first, as PEM.
    public var chainPEM: String
    public var notValidAfter: Date

    public static func == (lhs: AttestedDevice, rhs: AttestedDevice) -> Bool {
        lhs.serial == rhs.serial && lhs.chainPEM == rhs.chainPEM
    }
}

/// Why a device's chain was not taken.
public struct AttestationError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The manufacturer roots a platform or a client trusts.
public struct ManufacturerRoots: Sendable {
    public let certificates: [Certificate]

    public init(certificates: [Certificate]) {
        self.certificates = certificates
    }

    /// Every `CERTIFICATE` block of a PEM text.
    public init(pem: String) throws {
        let documents = try PEMDocument.parseMultiple(pemString: pem)
        certificates = try documents.filter { $0.discriminator == "CERTIFICATE" }.map { try Certificate(pemDocument: $0) }
        guard !certificates.isEmpty else { throw AttestationError("no certificate in the manufacturer roots") }
    }

    /// One PEM file, or every `.pem` file of a folder.
    public init(path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw AttestationError("manufacturer roots \(path) do not exist")
        }
        let files = isDirectory.boolValue
            ? try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".pem") }.sorted()
                .map { URL(fileURLWithPath: path).appendingPathComponent($0).path }
            : [path]
        var all: [Certificate] = []
        for file in files { all += try ManufacturerRoots(pem: String(contentsOfFile: file, encoding: .utf8)).certificates }
        self.init(certificates: all)
    }

    /// Verifies a device's chain (PEM, leaf first) as DESIGN.md's profile asks: to one of these roots, valid at `now`,
    /// a leaf with a serial, a model, an Ed25519 key for digital signatures and an X25519 agreement key.
    public func attest(chainPEM: String, now: Date) async throws(AttestationError) -> AttestedDevice {
        guard chainPEM.utf8.count <= 16 * 1024 else { throw AttestationError("the certificate chain is too long") }
        let chain: [Certificate]
        do {
            chain = try PEMDocument.parseMultiple(pemString: chainPEM).map { try Certificate(pemDocument: $0) }
        } catch {
            throw AttestationError("the certificate chain is not PEM certificates")
        }
        guard let leaf = chain.first, chain.count <= 4 else { throw AttestationError("the certificate chain must hold 1–4 certificates") }
        var verifier = Verifier(rootCertificates: CertificateStore(certificates)) {
            RFC5280Policy(validationTime: now)
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(chain.dropFirst()))
        guard case .validCertificate = result else {
            throw AttestationError("the certificate chain does not verify to a trusted manufacturer root at \(now.formatted(.iso8601))")
        }
        return try Self.read(leaf: leaf, chainPEM: chainPEM)
    }

    static func read(leaf: Certificate, chainPEM: String) throws(AttestationError) -> AttestedDevice {
        guard let serial = leaf.subject.attributeString(DeviceCertificateProfile.serialNumberAttribute), !serial.isEmpty,
            let model = leaf.subject.attributeString(ASN1ObjectIdentifier.RDNAttributeType.commonName), !model.isEmpty
        else { throw AttestationError("the device certificate names no serial number and model") }
        guard let signingKey = Curve25519.Signing.PublicKey(leaf.publicKey) else {
            throw AttestationError("the device certificate's key is not Ed25519")
        }
        guard let usage = try? leaf.extensions.keyUsage, usage.digitalSignature else {
            throw AttestationError("the device certificate's key is not for digital signatures")
        }
        guard let ext = leaf.extensions[oid: DeviceCertificateProfile.agreementKeyExtension],
            let octets = try? ASN1OctetString(derEncoded: ext.value),
            let agreementKey = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: octets.bytes)
        else { throw AttestationError("the device certificate carries no X25519 agreement key") }
        return AttestedDevice(serial: serial, model: model, signingKey: signingKey, agreementKey: agreementKey,
                              chainPEM: chainPEM, notValidAfter: leaf.notValidAfter)
    }
}

extension DistinguishedName {
    /// The first value of an attribute, as text.
    func attributeString(_ type: ASN1ObjectIdentifier) -> String? {
        for rdn in self {
            for attribute in rdn where attribute.type == type {
                return attribute.value.description
            }
        }
        return nil
    }
}

/// Ed25519 private keys as PKCS#8 PEM (RFC 8410), the form `openssl pkey` reads: the fixed prefix and the 32-byte seed.
public enum Ed25519PEM {
    static let prefix: [UInt8] = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]

    public static func encode(_ key: Curve25519.Signing.PrivateKey) -> String {
        PEMDocument(type: "PRIVATE KEY", derBytes: prefix + Array(key.rawRepresentation)).pemString
    }

    public static func decode(_ pem: String) throws -> Curve25519.Signing.PrivateKey {
        let document = try PEMDocument(pemString: pem)
        guard document.discriminator == "PRIVATE KEY", document.derBytes.count == prefix.count + 32,
            Array(document.derBytes.prefix(prefix.count)) == prefix
        else { throw AttestationError("not an Ed25519 private key in PKCS#8 PEM") }
        return try Curve25519.Signing.PrivateKey(rawRepresentation: document.derBytes.suffix(32))
    }
}
