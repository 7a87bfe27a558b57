import Crypto
import Foundation
import Hummingbird
import LatchkeyCloud
import LatchkeyDevice
import LatchkeyProtocol
import Testing

/// Each attack is refused, and nothing changes: the device keeps its password, the request keeps its state.
@Suite("Attacks on the reset", .timeLimit(.minutes(3)))
struct AttackTests {
    /// The request is still approved and the device still answers to its old password.
    func expectNothingChanged(_ app: TestPlatform, _ scene: BoundDeviceScene, _ request: API.PasswordReset,
                              sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let status = try await app.call(.get, "/api/v1/password-resets/\(request.id)", token: scene.owner.token)
            .decode(API.PasswordReset.self).status
        #expect(status == .approved, sourceLocation: sourceLocation)
        #expect(try await scene.device.login("Vecchia2023") == 200, sourceLocation: sourceLocation)
    }

    func apply(_ scene: BoundDeviceScene, grant: String, sealed: String) async throws -> DeviceHarness.LocalAnswer {
        try await scene.device.local(.POST, "password-reset", body: LocalAPI.ApplyReset(grant: grant, sealedPassword: sealed))
    }

    @Test func aGrantNotSignedByThePlatformIsRefused() async throws {
        try await TestPlatform.run(.live) { app in
            let scene = try await BoundDeviceScene.start(on: app)
            let request = try await scene.approvedRequest(on: app, mode: .offSite)
            let real: API.Grant = try await scene.grant(on: app, request, courier: scene.owner).decode()
            let proof = try await scene.device.proof()
            let forged = try await ResetGrant.sign(
                ResetGrantClaims(requestId: request.id, serial: scene.device.serial, nonce: proof.nonce, issuedAt: app.clock.now,
                                 expiresAt: app.clock.now + 60),
                with: Curve25519.Signing.PrivateKey())
            let answer = try await apply(scene, grant: forged, sealed: real.sealedPassword)
            #expect(answer.status == 403)
            #expect(answer.code == .grantInvalid)
            try await expectNothingChanged(app, scene, request)
            await scene.stop()
        }
    }

    @Test func aUsedGrantCannotBeReplayed() async throws {
        try await TestPlatform.run(.live) { app in
            let scene = try await BoundDeviceScene.start(on: app)
            let request = try await scene.approvedRequest(on: app, mode: .offSite, newPassword: "PrimaNuova2025")
            let grant: API.Grant = try await scene.grant(on: app, request, courier: scene.owner).decode()
            #expect(try await apply(scene, grant: grant.grant, sealed: grant.sealedPassword).status == 200)
            // Its nonce is spent: whoever overheard the grant on the LAN cannot play it again.
            let replay = try await apply(scene, grant: grant.grant, sealed: grant.sealedPassword)
            #expect(replay.status == 403)
            #expect(replay.code == .grantInvalid)
            #expect(try await scene.device.login("PrimaNuova2025") == 200)
            await scene.stop()
        }
    }

    @Test func aGrantForAnotherDeviceIsRefused() async throws {
        try await TestPlatform.run(.live) { app in
            let scene = try await BoundDeviceScene.start(on: app)
            let other = try await DeviceHarness.start(on: app, serial: "OTHER-\(UUID().uuidString.prefix(6))")
            try await app.call(.post, "/api/v1/sites/\(scene.site.id)/devices", token: scene.owner.token,
                               body: API.BindDevice(serial: other.serial, verificationCode: other.verificationCode))
            let request = try await scene.approvedRequest(on: app, mode: .offSite)
            let grant: API.Grant = try await scene.grant(on: app, request, courier: scene.owner).decode()
            let answer = try await other.local(.POST, "password-reset",
                                               body: LocalAPI.ApplyReset(grant: grant.grant, sealedPassword: grant.sealedPassword))
            #expect(answer.status == 403)
            #expect(answer.code == .grantInvalid)
            #expect(try await other.login("Vecchia2023") == 200)
            try await expectNothingChanged(app, scene, request)
            await other.stop()
            await scene.stop()
        }
    }

    @Test func anExpiredGrantIsRefused() async throws {
        try await TestPlatform.run(.live) { app in
            let scene = try await BoundDeviceScene.start(on: app)
            let request = try await scene.approvedRequest(on: app, mode: .offSite)
            let grant: API.Grant = try await scene.grant(on: app, request, courier: scene.owner).decode()
            app.clock.advance(by: GrantRules.grantLifetime + 1)
            let answer = try await apply(scene, grant: grant.grant, sealed: grant.sealedPassword)
            #expect(answer.status == 403)
            #expect(answer.code == .grantInvalid)
            try await expectNothingChanged(app, scene, request)
            await scene.stop()
        }
    }

    @Test func aSealForAnotherKeyOrRequestDoesNotOpen() async throws {
        try await TestPlatform.run(.live) { app in
            let scene = try await BoundDeviceScene.start(on: app)
            let request = try await scene.approvedRequest(on: app, mode: .offSite)
            let grant: API.Grant = try await scene.grant(on: app, request, courier: scene.owner).decode()
            let strangerKey = Curve25519.KeyAgreement.PrivateKey()
            let serial = scene.device.serial
            let toStranger = try PasswordSeal.seal("Rubata2025", to: strangerKey.publicKey, requestId: request.id, serial: serial)
            let deviceKey = await scene.device.device.agreementPublicKey
            let toOtherRequest = try PasswordSeal.seal("Rubata2025", to: deviceKey, requestId: UUID(), serial: serial)
            let toOtherDevice = try PasswordSeal.seal("Rubata2025", to: deviceKey, requestId: request.id, serial: "OTHER-1")
            for sealed in [toStranger, toOtherRequest, toOtherDevice, "bm90LWEtc2VhbA"] {
                let answer = try await apply(scene, grant: grant.grant, sealed: sealed)
                #expect(answer.status == 403)
                #expect(answer.code == .grantInvalid)
            }
            // Only the device key opens the real seal; another key gets nothing out of it.
            #expect(throws: PasswordSeal.Failure.cannotOpen) { try PasswordSeal.open(grant.sealedPassword, with: strangerKey, requestId: request.id, serial: serial) }
            try await expectNothingChanged(app, scene, request)
            // The refused attempts spent nothing: the real grant still applies.
            #expect(try await apply(scene, grant: grant.grant, sealed: grant.sealedPassword).status == 200)
            await scene.stop()
        }
    }

    @Test func proximityProofsFromAnotherDeviceReusedOrStaleAreRefused() async throws {
        try await TestPlatform.run(.live) { app in
            let scene = try await BoundDeviceScene.start(on: app)
            let other = try await DeviceHarness.start(on: app, serial: "OTHER-\(UUID().uuidString.prefix(6))")
            let request = try await scene.approvedRequest(on: app, mode: .offSite)

            let fromOther = try await scene.grant(on: app, request, courier: scene.owner, proof: try await other.proof())
            #expect(fromOther.errorCode == .proximityInvalid)
            let proof = try await scene.device.proof()
            // Signed by someone else but naming this device.
            let forged = try ProximityProof.sign(serial: proof.serial, nonce: proof.nonce, issuedAt: proof.issuedAt,
                                                 with: Curve25519.Signing.PrivateKey())
            #expect(try await scene.grant(on: app, request, courier: scene.owner, proof: forged).errorCode == .proximityInvalid)
            #expect(try await scene.grant(on: app, request, courier: scene.owner, proof: proof).status == .ok)
            let reused = try await scene.grant(on: app, request, courier: scene.owner, proof: proof)
            #expect(reused.status == .forbidden)
            #expect(reused.errorCode == .proximityInvalid)
            let stale = try await scene.device.proof()
            app.clock.advance(by: GrantRules.proofFreshness + 1)
            #expect(try await scene.grant(on: app, request, courier: scene.owner, proof: stale).errorCode == .proximityInvalid)
            let installerAsCourier = try await scene.grant(on: app, request, courier: scene.installer)
            #expect(installerAsCourier.errorCode == .forbidden)
            try await expectNothingChanged(app, scene, request)
            await other.stop()
            await scene.stop()
        }
    }

    @Test func aReceiptNotSignedByTheDeviceCompletesNothing() async throws {
        try await TestPlatform.run(.live) { app in
            let scene = try await BoundDeviceScene.start(on: app)
            let request = try await scene.approvedRequest(on: app, mode: .offSite)
            let proof = try await scene.device.proof()
            _ = try await scene.grant(on: app, request, courier: scene.owner, proof: proof)
            let fake = try ResetReceipt.sign(requestId: request.id, serial: scene.device.serial, nonce: proof.nonce,
                                             appliedAt: app.clock.now, with: Curve25519.Signing.PrivateKey())
            let answer = try await app.call(.post, "/api/v1/password-resets/\(request.id)/receipt", token: scene.owner.token,
                                            body: API.ReceiptDelivery(receipt: fake))
            #expect(answer.status == .unprocessableContent)
            #expect(answer.errorCode == .receiptInvalid)
            // A device-signed receipt for a nonce never granted completes nothing either.
            let ungranted = try ResetReceipt.sign(requestId: request.id, serial: scene.device.serial, nonce: "never-granted",
                                                  appliedAt: app.clock.now, with: try scene.device.privateSigningKeyFromState())
            #expect(try await app.call(.post, "/api/v1/password-resets/\(request.id)/receipt", token: scene.owner.token,
                                       body: API.ReceiptDelivery(receipt: ungranted)).errorCode == .receiptInvalid)
            try await expectNothingChanged(app, scene, request)
            await scene.stop()
        }
    }
}

@Suite("The device's own rules", .timeLimit(.minutes(3)))
struct EmulatedDeviceTests {
    let platformKey = Curve25519.Signing.PrivateKey()
    let identity: DeviceIdentityFile

    init() throws {
        identity = try TestManufacturer.trusted.issue(serial: "CAM-1", model: "DS-2CD2143G2-I",
                                                      platformKey: Base64URL.encode(platformKey.publicKey.rawRepresentation))
    }

    func configuration(_ directory: URL, password: String?) -> DeviceConfiguration {
        DeviceConfiguration(identity: identity, deviceType: .camera, firmware: "V5.7.3",
                            cloudURL: "http://127.0.0.1:1", listenHost: "127.0.0.1", listenPort: 0,
                            stateDirectory: directory.path, adminPassword: password, discoveryPort: 0)
    }

    @Test func fiveWrongLoginsLockForThirtyMinutes() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("device-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let clock = ManualClock()
        let device = try EmulatedDevice(configuration: configuration(directory, password: "Giusta2024"), now: { clock.now })
        for _ in 1...4 {
            await #expect(throws: DeviceError.unauthenticated("Wrong user name or password.")) { try await device.login(username: "admin", password: "sbagliata1") }
        }
        await #expect(throws: DeviceError.locked(until: clock.now + 1800)) { try await device.login(username: "admin", password: "sbagliata1") }
        await #expect(throws: DeviceError.locked(until: clock.now + 1800)) { try await device.login(username: "admin", password: "Giusta2024") }
        // Someone else on the LAN is not locked out by them.
        _ = try await device.login(username: "admin", password: "Giusta2024", from: "192.0.2.20")
        clock.advance(by: 1800)
        _ = try await device.login(username: "admin", password: "Giusta2024")
    }

    @Test func aRestartOrANewBindingVoidsOutstandingNonces() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("device-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let clock = ManualClock()
        let device = try EmulatedDevice(configuration: configuration(directory, password: "Giusta2024"), now: { clock.now })

        func grant(for proof: ProximityProof, on target: EmulatedDevice) async throws -> (String, String) {
            let requestId = UUID()
            let sealed = try PasswordSeal.seal("Nuova2025x", to: await target.agreementPublicKey, requestId: requestId, serial: "CAM-1")
            let token = try await ResetGrant.sign(
                ResetGrantClaims(requestId: requestId, serial: "CAM-1", nonce: proof.nonce, issuedAt: clock.now, expiresAt: clock.now + 60),
                with: platformKey)
            return (token, sealed)
        }

        let beforeRestart = try await device.challenge()
        let restarted = try EmulatedDevice(configuration: configuration(directory, password: nil), now: { clock.now })
        let (staleGrant, staleSeal) = try await grant(for: beforeRestart, on: restarted)
        await #expect(throws: DeviceError.self) { try await restarted.applyReset(grant: staleGrant, sealedPassword: staleSeal) }

        let beforeBinding = try await restarted.challenge()
        await restarted.bindingChanged()
        let (voidedGrant, voidedSeal) = try await grant(for: beforeBinding, on: restarted)
        await #expect(throws: DeviceError.self) { try await restarted.applyReset(grant: voidedGrant, sealedPassword: voidedSeal) }

        let fresh = try await restarted.challenge()
        let (freshGrant, freshSeal) = try await grant(for: fresh, on: restarted)
        let receipt = try await restarted.applyReset(grant: freshGrant, sealedPassword: freshSeal)
        #expect(receipt.isSigned(by: await restarted.signingPublicKey))
        _ = try await restarted.login(username: "admin", password: "Nuova2025x")
    }

    @Test func anInactiveDeviceMustBeActivatedWithAPolicyPassword() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("device-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let device = try EmulatedDevice(configuration: configuration(directory, password: nil))
        #expect(await !device.isActivated)
        await #expect(throws: DeviceError.notActivated) { try await device.login(username: "admin", password: "anything1") }
        await #expect(throws: DeviceError.self) { try await device.activate(password: "admin1234") }
        try await device.activate(password: "Attiva2024")
        await #expect(throws: DeviceError.alreadyActivated) { try await device.activate(password: "Attiva2025") }
        // Keys, code and password survive a restart; outstanding nonces do not.
        let code = await device.verificationCode
        let key = await device.signingPublicKey.rawRepresentation
        let restarted = try EmulatedDevice(configuration: configuration(directory, password: nil))
        #expect(await restarted.verificationCode == code)
        #expect(await restarted.signingPublicKey.rawRepresentation == key)
        _ = try await restarted.login(username: "admin", password: "Attiva2024")
    }

    @Test func wrongLabelCodesSlowTheDeviceDownForAtMostAMinute() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("device-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let clock = ManualClock()
        let device = try EmulatedDevice(configuration: configuration(directory, password: "Giusta2024"), now: { clock.now })
        let key = await device.signingPublicKey
        func check(_ code: String) async throws -> CodeCheckAnswer {
            let check = CodeCheck(nonce: Base64URL.random(), kind: .label, accountId: UUID(), subjectId: UUID(), code: code)
            let answer = try await device.check(check)
            #expect(answer.isSigned(for: check, serial: "CAM-1", by: key))
            return answer
        }
        let wrong = identity.labelCode == "ZZZZZZ" ? "YYYYYY" : "ZZZZZZ"
        for _ in 1...5 { #expect(try await check(wrong).retryAfter == nil) }
        // Each further check waits twice as long as the last: 1, 2, 4 … seconds, never more than 60.
        var waits: [Int] = []
        for _ in 1...9 {
            let refused = try await check(identity.labelCode)
            #expect(!refused.matches)
            let wait = try #require(refused.retryAfter)
            waits.append(wait)
            clock.advance(by: TimeInterval(wait))
            #expect(try await check(wrong).matches == false)
        }
        #expect(waits == [1, 2, 4, 8, 16, 32, 60, 60, 60])
        clock.advance(by: 60)
        #expect(try await check(identity.labelCode).matches)
        #expect(try await check(wrong).retryAfter == nil)
    }

    @Test func theDeviceTakesAnotherPlatformKeyOnlyThroughARotationByThePinnedOne() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("device-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let device = try EmulatedDevice(configuration: configuration(directory, password: "Giusta2024"))
        let pinned = Base64URL.encode(platformKey.publicKey.rawRepresentation)
        #expect(await device.pinnedPlatformKey == pinned)
        let rogue = Curve25519.Signing.PrivateKey()
        let new = Curve25519.Signing.PrivateKey()
        let refused: [PlatformWelcome] = [
            try PlatformWelcome.sign(deviceNonce: "n", serial: "CAM-1", bound: false, with: rogue, rotation: nil),
            try PlatformWelcome.sign(deviceNonce: "n", serial: "CAM-1", bound: false, with: new,
                                     rotation: try KeyRotation.sign(from: rogue, to: new.publicKey)),
        ]
        for welcome in refused {
            await #expect(throws: DeviceError.self) { try await device.accept(welcome, deviceNonce: "n") }
            #expect(await device.pinnedPlatformKey == pinned)
        }
        // A welcome replayed from another connection does not prove the key either.
        let replayed = try PlatformWelcome.sign(deviceNonce: "old", serial: "CAM-1", bound: false, with: platformKey, rotation: nil)
        await #expect(throws: DeviceError.self) { try await device.accept(replayed, deviceNonce: "n") }
        try await device.accept(try PlatformWelcome.sign(deviceNonce: "n", serial: "CAM-1", bound: false, with: new,
                                                         rotation: try KeyRotation.sign(from: platformKey, to: new.publicKey)),
                                deviceNonce: "n")
        #expect(await device.pinnedPlatformKey == Base64URL.encode(new.publicKey.rawRepresentation))
    }

    /// A flood of challenges from one address is refused after a few (429 with when to come back) and cannot evict
    /// the courier's nonce; another address is not held back.
    @Test func aFloodOfChallengesFromOneSourceLeavesTheCouriersNonce() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("device-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let clock = ManualClock()
        let device = try EmulatedDevice(configuration: configuration(directory, password: "Giusta2024"), now: { clock.now })
        let courier = try await device.challenge(from: "192.0.2.10")
        var refusals: [Int] = []
        for _ in 0..<500 {
            do { _ = try await device.challenge(from: "192.0.2.66") } catch {
                if case .busy(let retryAfter) = error { refusals.append(retryAfter) }
            }
        }
        #expect(refusals.count == 500 - EmulatedDevice.challengesPerSourcePerMinute)
        #expect(refusals.allSatisfy { (1...60).contains($0) })
        _ = try await device.challenge(from: "192.0.2.11")
        let requestId = UUID()
        let sealed = try PasswordSeal.seal("Nuova2025x", to: await device.agreementPublicKey, requestId: requestId, serial: "CAM-1")
        func grant(_ nonce: String) async throws -> String {
            try await ResetGrant.sign(ResetGrantClaims(requestId: requestId, serial: "CAM-1", nonce: nonce, issuedAt: clock.now,
                                                       expiresAt: clock.now + 60), with: platformKey)
        }
        _ = try await device.applyReset(grant: try await grant(courier.nonce), sealedPassword: sealed)
        // The flooding address may ask again a minute later.
        clock.advance(by: 61)
        _ = try await device.challenge(from: "192.0.2.66")
        // A nonce outlives neither its proof's freshness nor its grant: after three minutes it is void.
        let stale = try await device.challenge(from: "192.0.2.10")
        clock.advance(by: 181)
        await #expect(throws: DeviceError.self) { try await device.applyReset(grant: try await grant(stale.nonce), sealedPassword: sealed) }
    }
}
