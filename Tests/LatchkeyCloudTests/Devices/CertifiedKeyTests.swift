import AsyncHTTPClient
import Crypto
import Foundation
import LatchkeyClient
import LatchkeyCloud
import LatchkeyDevice
import LatchkeyProtocol
import Testing

/// The owner's app seals only to the key a trusted manufacturer certified, and the courier delivers only to the device
/// that proves it holds it: a dishonest platform cannot read the password or steer it elsewhere.
@Suite("The app trusts certificates, not the platform's word", .timeLimit(.minutes(3)))
struct CertifiedKeyTests {
    func ownersApp(_ app: TestPlatform, _ scene: BoundDeviceScene, roots: ManufacturerRoots? = TestManufacturer.trusted.roots)
        throws -> LatchkeyClient
    {
        LatchkeyClient(server: "http://127.0.0.1:\(try #require(app.client.port))", token: scene.owner.token, manufacturerRoots: roots)
    }

    /// A dishonest operator rewrites what the platform says of the device.
    func lie(_ app: TestPlatform, about serial: String, _ change: @escaping @Sendable (inout DeviceIdentity) throws -> Void) async throws {
        try await app.platform.store.transaction { session in
            guard var device = try await session.devices.find(serial: serial), var identity = device.identity else { return }
            try change(&identity)
            device.identity = identity
            try await session.devices.save(device)
        }
    }

    @Test func aPlatformThatLiesAboutTheKeyGetsNothingItCanOpen() async throws {
        try await TestPlatform.run(.live) { app in
            let scene = try await BoundDeviceScene.start(on: app)
            let request = try await scene.requestReset(on: app, mode: .offSite)
            let attacker = Curve25519.KeyAgreement.PrivateKey()
            try await lie(app, about: scene.device.serial) { $0.agreementKey = Base64URL.encode(attacker.publicKey.rawRepresentation) }
            let approved = try await ownersApp(app, scene).approveReset(request.id, newPassword: "Onesta2026")
            #expect(approved.status == .approved)
            // The app took the key from the certificate: the attacker's key opens nothing, the device's does.
            let sealed = try #require(try await app.platform.store.read { try await $0.resetRequests.find(id: request.id) }?.sealedPassword)
            #expect(throws: PasswordSeal.Failure.cannotOpen) {
                try PasswordSeal.open(sealed, with: attacker, requestId: request.id, serial: scene.device.serial)
            }
            #expect(try PasswordSeal.open(sealed, with: scene.device.identity.agreementPrivateKey, requestId: request.id,
                                          serial: scene.device.serial) == "Onesta2026")
            await scene.stop()
        }
    }

    @Test func aChainThatDoesNotCertifyTheDeviceIsRefusedBeforeSealing() async throws {
        try await TestPlatform.run(.live) { app in
            let scene = try await BoundDeviceScene.start(on: app)
            let serial = scene.device.serial
            let request = try await scene.requestReset(on: app, mode: .offSite)
            let lies: [(String, String?)] = [
                ("a chain from a manufacturer the app does not trust", try TestManufacturer.stranger.issue(serial: serial, model: "DS-7608NI-K2").chain),
                ("a trusted chain for another device", try TestManufacturer.trusted.issue(serial: "OTHER-1", model: "DS-7608NI-K2", now: min(Date(), app.clock.now)).chain),
                ("no chain", nil),
            ]
            for (what, chain) in lies {
                try await lie(app, about: serial) { $0.certificateChain = chain }
                await #expect(throws: ClientError.self, "\(what)") { try await ownersApp(app, scene).approveReset(request.id, newPassword: "Onesta2026") }
            }
            // And an app with no roots configured seals nothing at all.
            await #expect(throws: ClientError.self) { try await ownersApp(app, scene, roots: nil).approveReset(request.id, newPassword: "Onesta2026") }
            let status = try await app.call(.get, "/api/v1/password-resets/\(request.id)", token: scene.owner.token).decode(API.PasswordReset.self).status
            #expect(status == .pending)
            await scene.stop()
        }
    }

    /// Something on the LAN answers for the serial with other keys (a clone, or a box the platform points at): the
    /// courier delivers nothing to it.
    @Test func theCourierDeliversOnlyToTheDeviceThatProvesTheCertifiedKey() async throws {
        try await TestPlatform.run(.live) { app in
            let scene = try await BoundDeviceScene.start(on: app)
            let request = try await scene.requestReset(on: app, mode: .offSite)
            let client = try ownersApp(app, scene)
            let approved = try await client.approveReset(request.id, newPassword: "Onesta2026")
            let clone = try await DeviceHarness.start(
                on: app, identity: try TestManufacturer.trusted.issue(serial: scene.device.serial, model: "DS-7608NI-K2", now: min(Date(), app.clock.now)),
                waitForConnection: false)
            let courier = ResetCourier(client: client)
            await #expect(throws: ClientError.self) { try await courier.carry(approved, deviceAddress: "127.0.0.1:\(clone.port)") }
            #expect(try await clone.login("Onesta2026") == 401)
            #expect(try await scene.device.login("Vecchia2023") == 200)
            let done = try await courier.carry(approved, deviceAddress: "127.0.0.1:\(scene.device.port)")
            #expect(done.status == .completed)
            #expect(try await scene.device.login("Onesta2026") == 200)
            await clone.stop()
            await scene.stop()
        }
    }

    /// A request approved before the seal changed suite: the device says what to do.
    @Test func aSealOfTheRetiredSuiteIsRefusedByTheDeviceWithWhatToDo() async throws {
        try await TestPlatform.run(.live) { app in
            let scene = try await BoundDeviceScene.start(on: app)
            let request = try await scene.approvedRequest(on: app, mode: .offSite)
            var sender = try HPKE.Sender(
                recipientKey: await scene.device.device.agreementPublicKey,
                ciphersuite: HPKE.Ciphersuite(kem: .Curve25519_HKDF_SHA256, kdf: .HKDF_SHA256, aead: .chaChaPoly),
                info: Data("latchkey/password-reset/v1/\(request.id.uuidString.lowercased())".utf8))
            let old = Base64URL.encode(sender.encapsulatedKey + (try sender.seal(Data("Vecchia2026".utf8))))
            try await app.platform.store.transaction { session in
                guard var stored = try await session.resetRequests.find(id: request.id) else { return }
                stored.sealedPassword = old
                try await session.resetRequests.update(stored)
            }
            let grant: API.Grant = try await scene.grant(on: app, request, courier: scene.owner).decode()
            let answer = try await scene.device.local(.POST, "password-reset", body: LocalAPI.ApplyReset(grant: grant.grant, sealedPassword: grant.sealedPassword))
            #expect(answer.status == 403)
            #expect(answer.message?.contains("approve the request again") == true, "\(String(decoding: answer.body, as: UTF8.self))")
            #expect(try await scene.device.login("Vecchia2023") == 200)
            await scene.stop()
        }
    }
}
