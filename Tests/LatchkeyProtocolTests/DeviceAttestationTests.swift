import Crypto
import Foundation
import LatchkeyProtocol
import Testing

/// DESIGN.md's device certificate profile, issued by `ManufacturerAuthority` and verified by `ManufacturerRoots`.
@Suite("Device identity: certificates and chains", .timeLimit(.minutes(3)))
struct DeviceAttestationTests {
    static let manufacturer = try! ManufacturerAuthority.create(name: "Acme Cameras")
    static let stranger = try! ManufacturerAuthority.create(name: "Acme Cameras")  // the same name, another key
    let now = Date()

    @Test func anIssuedIdentityAttestsItsSerialModelAndKeys() async throws {
        let identity = try Self.manufacturer.issue(serial: "NVR-0001", model: "DS-7608NI-K2", now: now)
        let attested = try await Self.manufacturer.roots.attest(chainPEM: identity.chain, now: now)
        #expect(attested.serial == "NVR-0001")
        #expect(attested.model == "DS-7608NI-K2")
        #expect(attested.signingKey.rawRepresentation == (try identity.signingPrivateKey).publicKey.rawRepresentation)
        #expect(attested.agreementKey.rawRepresentation == (try identity.agreementPrivateKey).publicKey.rawRepresentation)
        #expect(VerificationCode.isWellFormed(identity.labelCode))
    }

    @Test func anUntrustedRootIsRefused() async throws {
        let identity = try Self.stranger.issue(serial: "NVR-0001", model: "DS-7608NI-K2", now: now)
        await #expect(throws: AttestationError.self) { try await Self.manufacturer.roots.attest(chainPEM: identity.chain, now: now) }
    }

    @Test func anExpiredOrNotYetValidCertificateIsRefused() async throws {
        let identity = try Self.manufacturer.issue(serial: "NVR-0001", model: "DS-7608NI-K2", now: now,
                                                   validity: (now - 86400 * 30)...(now - 60))
        await #expect(throws: AttestationError.self) { try await Self.manufacturer.roots.attest(chainPEM: identity.chain, now: now) }
        let fresh = try Self.manufacturer.issue(serial: "NVR-0001", model: "DS-7608NI-K2", now: now)
        await #expect(throws: AttestationError.self) {
            try await Self.manufacturer.roots.attest(chainPEM: fresh.chain, now: now - 86400 * 365 * 30)
        }
    }

    /// A leaf signed by another intermediate, presented with the trusted intermediate: the signature does not verify.
    @Test func aForgedChainIsRefused() async throws {
        let forgedLeaf = try Self.stranger.issue(serial: "NVR-0001", model: "DS-7608NI-K2", now: now).chain
            .components(separatedBy: "-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
        let trustedIntermediate = try Self.manufacturer.issue(serial: "X", model: "Y", now: now).chain
            .components(separatedBy: "-----END CERTIFICATE-----")[1] + "-----END CERTIFICATE-----\n"
        await #expect(throws: AttestationError.self) {
            try await Self.manufacturer.roots.attest(chainPEM: forgedLeaf + trustedIntermediate, now: now)
        }
        for junk in ["", "not PEM", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"] {
            await #expect(throws: AttestationError.self) { try await Self.manufacturer.roots.attest(chainPEM: junk, now: now) }
        }
    }

    /// A third party — OpenSSL — reads the profile as DESIGN.md gives it: the serial, the model, Ed25519, the
    /// agreement key's extension, and a chain that verifies to the root.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/usr/bin/openssl"), "needs openssl"))
    func openSSLReadsTheProfileAndVerifiesTheChain() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("latchkey-openssl-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        try Self.manufacturer.save(in: folder)
        let identity = try Self.manufacturer.issue(serial: "NVR-0001", model: "DS-7608NI-K2", now: now)
        let parts = identity.chain.components(separatedBy: "-----END CERTIFICATE-----").map { $0 + "-----END CERTIFICATE-----\n" }
        try Data(parts[0].utf8).write(to: folder.appendingPathComponent("leaf.pem"))
        try Data(parts[1].utf8).write(to: folder.appendingPathComponent("intermediate.pem"))
        try Data(identity.signingKey.utf8).write(to: folder.appendingPathComponent("key.pem"))
        let text = try openssl(["x509", "-in", folder.appendingPathComponent("leaf.pem").path, "-noout", "-text"])
        #expect(text.contains("serialNumber = NVR-0001, CN = DS-7608NI-K2"))
        #expect(text.contains("ED25519"))
        #expect(text.contains("Digital Signature"))
        #expect(text.contains("2.25.3941060999121090076"))
        let verified = try openssl(["verify", "-CAfile", folder.appendingPathComponent("roots.pem").path, "-untrusted",
                                    folder.appendingPathComponent("intermediate.pem").path, folder.appendingPathComponent("leaf.pem").path])
        #expect(verified.contains("OK"))
        // The identity's private key is PKCS#8 that OpenSSL reads, and it is the key the certificate certifies.
        let fromKey = try openssl(["pkey", "-in", folder.appendingPathComponent("key.pem").path, "-pubout"])
        let fromCertificate = try openssl(["x509", "-in", folder.appendingPathComponent("leaf.pem").path, "-noout", "-pubkey"])
        #expect(fromKey == fromCertificate)
    }

    func openssl(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}

@Suite("The platform's identity on the channel", .timeLimit(.minutes(3)))
struct PlatformWelcomeTests {
    @Test func aWelcomeProvesTheKeyOverTheDevicesNonce() throws {
        let key = Curve25519.Signing.PrivateKey()
        let welcome = try PlatformWelcome.sign(deviceNonce: "n1", serial: "NVR-1", bound: false, with: key, rotation: nil)
        #expect(welcome.isSigned(deviceNonce: "n1", serial: "NVR-1"))
        #expect(!welcome.isSigned(deviceNonce: "n2", serial: "NVR-1"))
        #expect(!welcome.isSigned(deviceNonce: "n1", serial: "NVR-2"))
        var lying = welcome
        lying.platformKey = Base64URL.encode(Curve25519.Signing.PrivateKey().publicKey.rawRepresentation)
        #expect(!lying.isSigned(deviceNonce: "n1", serial: "NVR-1"))
    }

    @Test func onlyThePreviousKeyIntroducesANewOne() throws {
        let previous = Curve25519.Signing.PrivateKey()
        let new = Curve25519.Signing.PrivateKey()
        let rotation = try KeyRotation.sign(from: previous, to: new.publicKey)
        #expect(rotation.isValid)
        let selfSigned = try KeyRotation.sign(from: new, to: new.publicKey)
        var claimed = selfSigned
        claimed.previousKey = rotation.previousKey
        #expect(!claimed.isValid)
    }
}
