import Crypto
import Foundation
import SwiftASN1
import X509

/// A manufacturer's certificate authority (Matter's PAA → PAI): a root the platform is told to trust, and an
/// intermediate that signs each device's certificate at manufacture. `latchkey manufacturer init|issue`.
public struct ManufacturerAuthority: Sendable {
    public let name: String
    let rootKey: Curve25519.Signing.PrivateKey
    public let root: Certificate
    let intermediateKey: Curve25519.Signing.PrivateKey
    public let intermediate: Certificate

    /// A new root (valid 20 years) and intermediate (10 years).
    public static func create(name: String, now: Date = Date()) throws -> ManufacturerAuthority {
        let rootKey = Curve25519.Signing.PrivateKey()
        let rootName = try DistinguishedName {
            OrganizationName(name)
            CommonName("\(name) Device Root CA")
        }
        let root = try authorityCertificate(key: rootKey.publicKey, subject: rootName, issuer: rootName, signedBy: rootKey,
                                            pathLength: 1, years: 20, now: now)
        let intermediateKey = Curve25519.Signing.PrivateKey()
        let intermediateName = try DistinguishedName {
            OrganizationName(name)
            CommonName("\(name) Device Issuing CA")
        }
        let intermediate = try authorityCertificate(key: intermediateKey.publicKey, subject: intermediateName, issuer: rootName,
                                                    signedBy: rootKey, pathLength: 0, years: 10, now: now)
        return ManufacturerAuthority(name: name, rootKey: rootKey, root: root, intermediateKey: intermediateKey,
                                     intermediate: intermediate)
    }

    /// A CA certificate: it may sign certificates (and revocation lists), `pathLength` levels deep below it.
    private static func authorityCertificate(
        key: Curve25519.Signing.PublicKey, subject: DistinguishedName, issuer: DistinguishedName,
        signedBy issuerKey: Curve25519.Signing.PrivateKey, pathLength: Int, years: Double, now: Date
    ) throws -> Certificate {
        try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key), notValidBefore: now - 3600,
            notValidAfter: now + years * 365 * 86400, issuer: issuer, subject: subject, signatureAlgorithm: .ed25519,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: pathLength))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: .init(key))
            },
            issuerPrivateKey: .init(issuerKey))
    }

    /// One device's identity to DESIGN.md's profile: new keys, the chain (leaf, intermediate) and a label code.
    public func issue(
        serial: String, model: String, labelCode: String? = nil, platformKey: String? = nil, now: Date = Date(),
        validity: ClosedRange<Date>? = nil
    ) throws -> DeviceIdentityFile {
        guard !serial.isEmpty, serial.count <= 64, !model.isEmpty, model.count <= 64 else {
            throw AttestationError("a serial and a model are 1–64 characters")
        }
        if let labelCode, !VerificationCode.isWellFormed(labelCode) {
            throw AttestationError("a label code is six capital letters (no I or O)")
        }
        let signing = Curve25519.Signing.PrivateKey()
        let agreement = Curve25519.KeyAgreement.PrivateKey()
        let subject = try DistinguishedName([
            RelativeDistinguishedName.Attribute(type: DeviceCertificateProfile.serialNumberAttribute, printableString: serial),
            RelativeDistinguishedName.Attribute(type: ASN1ObjectIdentifier.RDNAttributeType.commonName, utf8String: model),
        ])
        let agreementExtension = try DeviceCertificateProfile.agreementKeyExtensionValue(agreement.publicKey)
        let leaf = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(signing.publicKey),
            notValidBefore: validity?.lowerBound ?? now - 3600, notValidAfter: validity?.upperBound ?? now + 10 * 365 * 86400,
            issuer: intermediate.subject, subject: subject, signatureAlgorithm: .ed25519,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                agreementExtension
            },
            issuerPrivateKey: .init(intermediateKey))
        let chain = try [leaf, intermediate].map { try $0.serializeAsPEM().pemString }.joined(separator: "\n")
        return DeviceIdentityFile(
            serial: serial, model: model, signingKey: Ed25519PEM.encode(signing),
            agreementKey: Base64URL.encode(agreement.rawRepresentation), chain: chain,
            labelCode: labelCode ?? VerificationCode.random(), platformKey: platformKey)
    }

    /// The root as PEM: what a platform or client is given to trust this manufacturer.
    public var rootsPEM: String {
        get throws { try root.serializeAsPEM().pemString + "\n" }
    }

    public var roots: ManufacturerRoots { ManufacturerRoots(certificates: [root]) }

    // MARK: - On disk

    struct Stored: Codable {
        var name: String
        var rootKey: String
        var root: String
        var intermediateKey: String
        var intermediate: String
    }

    /// Writes `authority.json` (private keys, mode 0600) and `roots.pem` (the root, for the platform) in `directory`.
    public func save(in directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let stored = Stored(
            name: name, rootKey: Ed25519PEM.encode(rootKey), root: try root.serializeAsPEM().pemString,
            intermediateKey: Ed25519PEM.encode(intermediateKey), intermediate: try intermediate.serializeAsPEM().pemString)
        try PrivateFile.write(try WireCoding.makeEncoder().encode(stored), to: directory.appendingPathComponent("authority.json"))
        try Data(try rootsPEM.utf8).write(to: directory.appendingPathComponent("roots.pem"), options: .atomic)
    }

    public static func load(from directory: URL) throws -> ManufacturerAuthority {
        let data = try Data(contentsOf: directory.appendingPathComponent("authority.json"))
        let stored = try WireCoding.makeDecoder().decode(Stored.self, from: data)
        return ManufacturerAuthority(
            name: stored.name, rootKey: try Ed25519PEM.decode(stored.rootKey), root: try Certificate(pemEncoded: stored.root),
            intermediateKey: try Ed25519PEM.decode(stored.intermediateKey),
            intermediate: try Certificate(pemEncoded: stored.intermediate))
    }
}

/// Everything a device is given at manufacture, in one file (mode 0600): `latchkey device --identity FILE`.
public struct DeviceIdentityFile: Codable, Sendable, Equatable {
    public var serial: String
    public var model: String
    /// Ed25519, PKCS#8 PEM.
    public var signingKey: String
    /// X25519 private key, base64url.
    public var agreementKey: String
    /// The certificate chain, PEM, leaf first.
    public var chain: String
    /// The six letters printed on the label; only the device checks them.
    public var labelCode: String
    /// The platform's Ed25519 public key (base64url) when provisioned at manufacture; else learned on first welcome.
    public var platformKey: String?

    public init(serial: String, model: String, signingKey: String, agreementKey: String, chain: String, labelCode: String,
                platformKey: String?) {
        self.serial = serial
        self.model = model
        self.signingKey = signingKey
        self.agreementKey = agreementKey
        self.chain = chain
        self.labelCode = labelCode
        self.platformKey = platformKey
    }

    public var signingPrivateKey: Curve25519.Signing.PrivateKey {
        get throws { try Ed25519PEM.decode(signingKey) }
    }

    public var agreementPrivateKey: Curve25519.KeyAgreement.PrivateKey {
        get throws {
            guard let raw = Base64URL.decode(agreementKey) else { throw AttestationError("the agreement key is not base64url") }
            return try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: raw)
        }
    }

    public func write(to file: URL) throws {
        try PrivateFile.write(try WireCoding.makeEncoder().encode(self), to: file)
    }

    public static func read(from file: URL) throws -> DeviceIdentityFile {
        try WireCoding.makeDecoder().decode(DeviceIdentityFile.self, from: Data(contentsOf: file))
    }
}

/// A file only its owner may read: created with mode 0600 before any secret is written into it.
///
/// Written whole or not at all, even across a power cut: the bytes go to a temporary file beside it, reach the disk
/// (`fsync`), and only then is it renamed into place, and the folder's entry flushed too. Renamed without the first
/// flush, a new file can be found empty after a power cut (ext4 flushes before a rename only a file that replaces
/// another): a platform signing key lost that way is replaced at the next start by one the devices do not know, and a
/// device's first state by nothing.
public enum PrivateFile {
    /// Writes `data` to `file`, in place of what it held.
    public static func write(_ data: Data, to file: URL) throws {
        try place(data, at: file) { rename($0, $1) == 0 ? 0 : errno }
    }

    /// Writes `data` to `file` only if there is no such file yet: of two processes creating it at once, one places its
    /// file (`link` either places it whole or finds one there), and the other keeps the one it finds.
    public static func create(_ data: Data, at file: URL) throws {
        try place(data, at: file) { temporary, file in
            defer { unlink(temporary) }
            return link(temporary, file) == 0 || errno == EEXIST ? 0 : errno
        }
    }

    /// The bytes to a temporary file beside `file`, flushed, then put in place by `put` (which answers 0, or the `errno`
    /// it failed with), and the folder flushed.
    private static func place(_ data: Data, at file: URL, by put: (String, String) -> Int32) throws {
        let folder = file.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let temporary = folder.appendingPathComponent(".\(file.lastPathComponent).\(UUID().uuidString)")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: temporary.path])
        }
        do {
            let handle = try FileHandle(forWritingTo: temporary)
            try handle.write(contentsOf: data)
            try handle.synchronize()
            try handle.close()
            let failure = put(temporary.path, file.path)
            guard failure == 0 else { throw POSIXError(POSIXErrorCode(rawValue: failure) ?? .EIO) }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
        try syncFolder(folder)
    }

    /// Flushes a folder's entries to the disk: a file renamed or linked into it is then found there after a power cut.
    private static func syncFolder(_ folder: URL) throws {
        let descriptor = open(folder.path, O_RDONLY | O_DIRECTORY)
        guard descriptor >= 0 else { throw CocoaError(.fileReadUnknown, userInfo: [NSFilePathErrorKey: folder.path]) }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: folder.path]) }
    }
}
