import Foundation
import Hummingbird
@testable import LatchkeyCloud
import LatchkeyProtocol
import Testing

/// The owner's own reset (`mode: owner`): the owner of a bound device asks, approves and carries it, from the device's
/// LAN as always; nobody else is asked or told, and the history says who did it.
@Suite("The owner's own reset", .timeLimit(.minutes(2)))
struct OwnResetTests {
    @Test func theOwnerAsksApprovesAndCarriesTheirOwnReset() async throws {
        try await TestPlatform.run(.live) { app in
            let device = try await DeviceHarness.start(on: app)
            let scene = try #require(try await BoundDeviceScene.bind(device, on: app))
            let asked = try await app.call(.post, "/api/v1/devices/\(device.serial)/password-resets", token: scene.owner.token,
                                           body: API.RequestPasswordReset(mode: .owner))
            #expect(asked.status == .created, "\(asked.text)")
            let request: API.PasswordReset = try asked.decode()
            #expect(request.mode == .owner)
            #expect(request.installerId == scene.owner.id, "the one who asked is the owner")
            #expect(request.expiresAt.timeIntervalSince(request.createdAt) == 3600)
            // Nobody else is asked, and the installer authorized on the site does not even see it.
            #expect(try await app.notifications(of: scene.installer).isEmpty)
            #expect(try await app.call(.get, "/api/v1/password-resets/\(request.id)", token: scene.installer.token).status == .notFound)

            _ = try await scene.approvedRequest(on: app, mode: .owner, existing: request, newPassword: "MiaPropria26")
            let grant: API.Grant = try await scene.grant(on: app, request, courier: scene.owner).decode()
            let applied = try await device.local(.POST, "password-reset", body: LocalAPI.ApplyReset(grant: grant.grant, sealedPassword: grant.sealedPassword))
            #expect(applied.status == 200)
            let receipt: ResetReceipt = try applied.decode()
            let done: API.PasswordReset = try await app.call(.post, "/api/v1/password-resets/\(request.id)/receipt", token: scene.owner.token,
                                                              body: API.ReceiptDelivery(receipt: receipt)).decode()
            #expect(done.status == .completed)
            #expect(try await device.login("MiaPropria26") == 200)

            // Told once, and only the owner.
            let notices = try await app.notifications(of: scene.owner, category: "services")
            #expect(notices.filter { $0.kind == .resetCompleted }.count == 1)
            #expect(notices.filter { $0.kind == .resetApproved }.count == 1)
            #expect(try await app.notifications(of: scene.installer).isEmpty)
            // The history says who asked: the owner.
            let history: [API.AuditEntry] = try await app.call(.get, "/api/v1/devices/\(device.serial)/audit", token: scene.owner.token).decode()
            let requested = try #require(history.first { $0.action == "reset.requested" && $0.requestId == request.id })
            #expect(requested.actorId == scene.owner.id)
            await device.stop()
        }
    }

    @Test func onlyTheDevicesOwnerAsksForTheirOwnReset() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            let own = { (token: String, mode: ResetMode) in
                try await app.call(.post, "/api/v1/devices/\(scene.device.serial)/password-resets", token: token,
                                   body: API.RequestPasswordReset(mode: mode))
            }
            #expect(try await own(scene.installer.token, .owner).errorCode == .forbidden, "an installer cannot ask as the owner")
            #expect(try await own(scene.owner.token, .offSite).errorCode == .forbidden, "an owner asks with mode owner")
            let stranger = try await app.signUp(.owner)
            #expect(try await own(stranger.token, .owner).errorCode == .notFound, "another owner's device is not theirs to reset")
            #expect(try await own(scene.owner.token, .owner).status == .created)
            // One open request per device, whoever asked.
            #expect(try await own(scene.owner.token, .owner).errorCode == .requestAlreadyOpen)
            #expect(try await app.requestReset(scene).errorCode == .requestAlreadyOpen)
        }
    }
}
