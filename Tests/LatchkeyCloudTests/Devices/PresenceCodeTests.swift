import AsyncHTTPClient
import Foundation
import LatchkeyCloud
import LatchkeyDevice
import LatchkeyProtocol
import NIOCore
import Testing

/// The browser path: a presence code the device shows only for an approved request, compares itself, and spends once.
@Suite("Presence codes and delivery over the device's channel", .timeLimit(.minutes(3)))
struct PresenceCodeTests {
    func presenceCode(_ device: DeviceHarness) async throws -> DeviceHarness.LocalAnswer {
        try await device.local(.POST, "presence-code")
    }

    func deliver(_ app: TestPlatform, _ request: API.PasswordReset, code: String, by person: TestPlatform.Person)
        async throws -> TestPlatform.Answer
    {
        try await app.call(.post, "/api/v1/password-resets/\(request.id)/presence", token: person.token,
                           body: API.PresenceCodeDelivery(presenceCode: code))
    }

    @Test func theInstallerFinishesOnSiteWithTheCodeTheDeviceShows() async throws {
        try await TestPlatform.run(.live) { app in
            let scene = try await BoundDeviceScene.start(on: app)
            let pending = try await scene.requestReset(on: app, mode: .onSite)
            // Before the owner approves, the device has no code to give.
            let early = try await presenceCode(scene.device)
            #expect(early.status == 409)
            #expect(try await deliver(app, pending, code: "123456", by: scene.installer).errorCode != nil)

            let request = try await scene.approvedRequest(on: app, mode: .onSite, existing: pending, newPassword: "Presente2026")
            let shown: LocalAPI.PresenceCode = try await waitForCode(scene.device)
            #expect(shown.requestId == request.id)
            #expect(shown.requestedBy == "Ivan Installa")
            #expect(shown.expiresAt <= app.clock.now + 120)
            let done = try await deliver(app, request, code: shown.code, by: scene.installer)
            #expect(done.status == .ok, "\(done.text)")
            #expect(try done.decode(API.PasswordReset.self).status == .completed)
            #expect(try await scene.device.login("Presente2026") == 200)
            #expect(try await scene.device.login("Vecchia2023") == 401)
            let history: [API.AuditEntry] = try await app.call(.get, "/api/v1/devices/\(scene.device.serial)/audit", token: scene.owner.token).decode()
            #expect(history.contains { $0.action == "reset.granted" && ($0.detail ?? "").contains("presence code") })
            // The platform never kept the code.
            #expect(!(try await DatabaseDump.text(of: app.platform.database)).contains(shown.code))
            await scene.stop()
        }
    }

    @Test func threeWrongCodesEndTheCodeAndAnExpiredOneIsRefused() async throws {
        try await TestPlatform.run(.live) { app in
            let scene = try await BoundDeviceScene.start(on: app)
            let request = try await scene.approvedRequest(on: app, mode: .offSite)
            let shown: LocalAPI.PresenceCode = try await waitForCode(scene.device)
            let wrong = shown.code == "000000" ? "111111" : "000000"
            for attempt in 1...3 {
                let answer = try await deliver(app, request, code: wrong, by: scene.owner)
                #expect(answer.errorCode == .presenceCodeInvalid, "attempt \(attempt): \(answer.text)")
            }
            // The code is spent: even the right one no longer works.
            #expect(try await deliver(app, request, code: shown.code, by: scene.owner).errorCode == .presenceCodeInvalid)
            let fresh: LocalAPI.PresenceCode = try await presenceCode(scene.device).decode()
            app.clock.advance(by: 121)
            try await scene.device.waitUntilConnected(to: app, freshAt: app.clock.now)
            #expect(try await deliver(app, request, code: fresh.code, by: scene.owner).errorCode == .presenceCodeInvalid)
            #expect(try await scene.device.login("Vecchia2023") == 200)
            let status = try await app.call(.get, "/api/v1/password-resets/\(request.id)", token: scene.owner.token).decode(API.PasswordReset.self).status
            #expect(status == .approved)
            await scene.stop()
        }
    }

    @Test func anOfflineDeviceIsSaidAtOnceAndNothingIsSpent() async throws {
        try await TestPlatform.run(.live) { app in
            let scene = try await BoundDeviceScene.start(on: app)
            let request = try await scene.approvedRequest(on: app, mode: .offSite)
            let shown: LocalAPI.PresenceCode = try await waitForCode(scene.device)
            // Gone for good: its state (its keys among it) goes with it.
            await scene.device.stop()
            var answer = try await deliver(app, request, code: shown.code, by: scene.owner)
            for _ in 0..<50 where answer.errorCode != .deviceOffline {
                try await Task.sleep(for: .milliseconds(50))
                answer = try await deliver(app, request, code: shown.code, by: scene.owner)
            }
            #expect(answer.errorCode == .deviceOffline)
            let status = try await app.call(.get, "/api/v1/password-resets/\(request.id)", token: scene.owner.token).decode(API.PasswordReset.self).status
            #expect(status == .approved)
        }
    }

    /// The owner approves while the device is away: the approval reaches it when its channel comes back, and its page
    /// shows the code then.
    @Test func anApprovalGivenWhileTheDeviceWasAwayReachesItWhenItComesBack() async throws {
        try await TestPlatform.run(.live) { app in
            let scene = try await BoundDeviceScene.start(on: app)
            let pending = try await scene.requestReset(on: app, mode: .offSite)
            await scene.device.stop(removingState: false)
            let request = try await scene.approvedRequest(on: app, mode: .offSite, existing: pending)
            let back = try await DeviceHarness.start(on: app, serial: scene.device.serial, stateDirectory: scene.device.stateDirectory,
                                                     identity: scene.device.identity)
            let shown: LocalAPI.PresenceCode = try await waitForCode(back)
            #expect(shown.requestId == request.id)
            await back.stop()
        }
    }

    /// The device's own page, as a person opens it in a browser on the LAN.
    @Test func theDevicesPageShowsTheCodeWithWhoAskedAndAWarning() async throws {
        try await TestPlatform.run(.live) { app in
            let scene = try await BoundDeviceScene.start(on: app)
            _ = try await scene.approvedRequest(on: app, mode: .offSite)
            let origin = "http://127.0.0.1:\(scene.device.port)"
            let page = try await scene.device.page(.GET, "/?lang=it")
            #expect(page.text.contains("Password dimenticata?"))
            var shown = try await scene.device.page(.POST, "/presence-code?lang=it", origin: origin)
            for _ in 0..<50 where shown.status != 200 {
                try await Task.sleep(for: .milliseconds(50))
                shown = try await scene.device.page(.POST, "/presence-code?lang=it", origin: origin)
            }
            #expect(shown.status == 200)
            #expect(shown.text.contains("Ivan Installa"))
            #expect(shown.text.contains("Dallo solo a chi si trova accanto a questo dispositivo"))
            #expect(shown.text.contains(#"id="presence-code""#))
            let english = try await scene.device.page(.POST, "/presence-code?lang=en", origin: origin)
            #expect(english.text.contains("Give it only to someone standing next to this device"))
            // A form from any other page, or none, gets nothing.
            #expect(try await scene.device.page(.POST, "/presence-code", origin: "http://evil.example").status == 403)
            #expect(try await scene.device.page(.POST, "/presence-code", origin: nil).status == 403)
            await scene.stop()
        }
    }

    /// The notice reaches the device over its channel just after approval: ask until the code shows.
    func waitForCode(_ device: DeviceHarness) async throws -> LocalAPI.PresenceCode {
        for _ in 0..<100 {
            let answer = try await presenceCode(device)
            if answer.status == 200 { return try answer.decode() }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw PresenceCodeNeverShown()
    }

    struct PresenceCodeNeverShown: Error {}
}
