import Crypto
import Foundation
import LatchkeyProtocol

/// The platform's grant-signing key lives in a file readable by the service's user only, never in the database: a
/// stolen database or backup signs no grant. Nodes of one deployment share the file (see the README).
enum PlatformSigningKey {
    /// Reads the key, or creates it when the file does not exist yet. Two nodes starting at once on a shared folder
    /// agree on one key: the file is linked into place only if absent, and whoever lost reads the winner's.
    static func loadOrCreate(file path: String) throws -> Curve25519.Signing.PrivateKey {
        let file = URL(fileURLWithPath: path)
        if let key = try load(file: path) { return key }
        let directory = file.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        do {
            try PrivateFile.create(Data(Ed25519PEM.encode(Curve25519.Signing.PrivateKey()).utf8), at: file)
        } catch {
            throw ConfigurationError(problems: ["signing-key-file \(path) cannot be created: \(error.localizedDescription)."])
        }
        guard let key = try load(file: path) else {
            throw ConfigurationError(problems: ["signing-key-file \(path) could not be read back."])
        }
        return key
    }

    /// The key in `path`, nil when there is no file; refuses a file that others may read.
    static func load(file path: String) throws -> Curve25519.Signing.PrivateKey? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        if let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue, mode & 0o077 != 0 {
            throw ConfigurationError(problems: [
                "signing-key-file \(path) may be read by other users (mode \(String(mode, radix: 8))): chmod 600 it."
            ])
        }
        do {
            return try Ed25519PEM.decode(String(contentsOfFile: path, encoding: .utf8))
        } catch {
            throw ConfigurationError(problems: ["signing-key-file \(path) does not hold an Ed25519 private key in PKCS#8 PEM."])
        }
    }
}
