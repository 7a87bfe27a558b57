import Crypto
import FluentKit
import Foundation
import Hummingbird
import LatchkeyCloud
import LatchkeyDevice
import LatchkeyProtocol
import SQLKit
import Testing

@Suite("The whole reset with a real device (keys on both sides)", .timeLimit(.minutes(3)))
struct DeviceResetFlowTests {
    @Test func offSiteResetCompletesAndOnlyTheDeviceEverReadsThePassword() async throws {
        try await TestPlatform.run(.live) { app in
            let scene = try await BoundDeviceScene.start(on: app)
            defer { Task { await scene.stop() } }
            let request = try await scene.approvedRequest(on: app, mode: .offSite, newPassword: "NuovaPass2025")

            // Off-site: the owner's app is the courier, on the device's LAN.
            let granted = try await scene.grant(on: app, request, courier: scene.owner)
            #expect(granted.status == .ok, "\(granted.text)")
            let grant: API.Grant = try granted.decode()
            let applied = try await scene.device.local(.POST, "password-reset",
                                                       body: LocalAPI.ApplyReset(grant: grant.grant, sealedPassword: grant.sealedPassword))
            #expect(applied.status == 200)
            let receipt: ResetReceipt = try applied.decode()
            let completed = try await app.call(.post, "/api/v1/password-resets/\(request.id)/receipt", token: scene.owner.token,
                                               body: API.ReceiptDelivery(receipt: receipt))
            #expect(try completed.decode(API.PasswordReset.self).status == .completed)

            #expect(try await scene.device.login("NuovaPass2025") == 200)
            #expect(try await scene.device.login("Vecchia2023") == 401)
            for person in [scene.owner, scene.installer] {
                let inbox = try await app.notifications(of: person, category: "services")
                #expect(inbox.contains { $0.kind == .resetCompleted && $0.title == "Password reset successfully" })
            }
            // Nowhere in the platform's database is the new password in clear — and the dump does read it all.
            let everything = try await DatabaseDump.text(of: app.platform.database)
            #expect(everything.contains(scene.device.serial))
            #expect(everything.localizedCaseInsensitiveContains(request.id.uuidString))
            #expect(!everything.contains("NuovaPass2025"))
        }
    }

    @Test func onSiteResetIsCarriedByTheInstallerAndTheReceiptAlsoArrivesOverTheChannel() async throws {
        try await TestPlatform.run(.live) { app in
            let scene = try await BoundDeviceScene.start(on: app)
            defer { Task { await scene.stop() } }
            let request = try await scene.approvedRequest(on: app, mode: .onSite)

            let byOwner = try await scene.grant(on: app, request, courier: scene.owner)
            #expect(byOwner.status == .forbidden)
            let grant: API.Grant = try await scene.grant(on: app, request, courier: scene.installer).decode()
            // The installer's app loses its connection after the device applied: the device's channel reports instead.
            let applied = try await scene.device.local(.POST, "password-reset",
                                                       body: LocalAPI.ApplyReset(grant: grant.grant, sealedPassword: grant.sealedPassword))
            #expect(applied.status == 200)
            var status = ResetStatus.approved
            for _ in 0..<100 where status != .completed {
                status = try await app.call(.get, "/api/v1/password-resets/\(request.id)", token: scene.installer.token)
                    .decode(API.PasswordReset.self).status
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(status == .completed)
            let history: [API.AuditEntry] = try await app.call(.get, "/api/v1/devices/\(scene.device.serial)/audit", token: scene.owner.token).decode()
            #expect(history.contains { $0.action == "reset.completed" && $0.detail == "via device channel" })
        }
    }

    /// The device forgets a receipt the platform took without writing its state again: a restart before its next
    /// write reports the receipt once more, and the platform takes it as once.
    @Test func aReceiptReportedAgainAfterARestartCountsOnce() async throws {
        try await TestPlatform.run(.live) { app in
            let scene = try await BoundDeviceScene.start(on: app)
            let request = try await scene.approvedRequest(on: app, mode: .offSite, newPassword: "NuovaPass2025")
            let grant: API.Grant = try await scene.grant(on: app, request, courier: scene.owner).decode()
            let applied = try await scene.device.local(.POST, "password-reset",
                                                       body: LocalAPI.ApplyReset(grant: grant.grant, sealedPassword: grant.sealedPassword))
            #expect(applied.status == 200)
            let saved = scene.device.stateDirectory.appendingPathComponent("device.json")
            #expect(try String(contentsOf: saved, encoding: .utf8).contains(request.id.uuidString))
            var status = ResetStatus.approved
            for _ in 0..<100 where status != .completed {
                try await Task.sleep(for: .milliseconds(20))
                status = try await app.call(.get, "/api/v1/password-resets/\(request.id)", token: scene.owner.token)
                    .decode(API.PasswordReset.self).status
            }
            #expect(status == .completed)
            try await Task.sleep(for: .milliseconds(200))
            await scene.device.stop(removingState: false)
            // Taken over the channel, and still in the state the device wrote when it applied the password.
            #expect(try String(contentsOf: saved, encoding: .utf8).contains(request.id.uuidString))

            let restarted = try await DeviceHarness.start(on: app, adminPassword: nil, stateDirectory: scene.device.stateDirectory,
                                                          identity: scene.device.identity)
            defer { Task { await restarted.stop() } }
            try await Task.sleep(for: .milliseconds(300))
            let history: [API.AuditEntry] = try await app.call(.get, "/api/v1/devices/\(restarted.serial)/audit", token: scene.owner.token).decode()
            #expect(history.filter { $0.action == "reset.completed" }.count == 1)
            for person in [scene.owner, scene.installer] {
                #expect(try await app.notifications(of: person, category: "services").filter { $0.kind == .resetCompleted }.count == 1)
            }
            #expect(try await restarted.login("NuovaPass2025") == 200)
        }
    }
}
