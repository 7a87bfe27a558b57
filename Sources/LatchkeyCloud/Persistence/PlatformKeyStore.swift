import Crypto
import FluentKit
import Foundation

/// Keeps the platform's Ed25519 signing key in the database, so every node of one deployment signs with the same
/// key and a restart keeps it. Created on first start.
enum PlatformKeyStore {
    static let keyName = "grant-signing"

    static func loadOrCreate(on database: any Database, now: Date) async throws -> Curve25519.Signing.PrivateKey {
        if let key = try await load(on: database) { return key }
        let key = Curve25519.Signing.PrivateKey()
        let model = PlatformKeyModel()
        model.id = keyName
        model.privateKey = key.rawRepresentation.base64EncodedString()
        model.createdAt = now
        do {
            try await model.create(on: database)
            return key
        } catch {
            // Another node may have created it first: use theirs.
            guard let key = try await load(on: database) else { throw error }
            return key
        }
    }

    private static func load(on database: any Database) async throws -> Curve25519.Signing.PrivateKey? {
        guard let model = try await PlatformKeyModel.find(keyName, on: database) else { return nil }
        guard let raw = Data(base64Encoded: model.privateKey) else { return nil }
        return try Curve25519.Signing.PrivateKey(rawRepresentation: raw)
    }
}
