import Foundation
import Hummingbird
import HummingbirdTesting
@testable import LatchkeyCloud
import LatchkeyProtocol
import Testing

/// Several `serve` nodes on one PostgreSQL: a notification written on one reaches listeners on another.
@Suite("Nodes sharing one PostgreSQL", .enabled(if: TestDatabase.postgresURL != nil, "needs PostgreSQL (DATABASE_URL)"), .timeLimit(.minutes(3)))
struct MultiNodeTests {
    @Test func aListenerOnOneNodeHearsWhatAnotherNodeWrote() async throws {
        try await TestDatabase.with { location in
            var configuration = LatchkeyConfiguration.testing(database: location)
            defer { configuration.removeTestingKeyFolder() }
            configuration.sweepInterval = .seconds(3600)
            let clock = ManualClock()
            let nodeA = try await buildPlatform(configuration, clock: clock.clock)
            let nodeB = try await buildPlatform(configuration, clock: clock.clock)
            try await nodeA.application.test(.router) { clientA in
                try await nodeB.application.test(.router) { _ in
                    let app = TestPlatform(platform: nodeA, client: clientA, clock: clock)
                    let scene = try await app.resetScene()
                    let heard = await nodeB.notificationHub.subscribe(accountId: scene.owner.id, session: SessionToken.hash(scene.owner.token))
                    // Node B's listener connects in the background: ask until it hears one, within a few seconds.
                    let received = try await withThrowingTaskGroup(of: AccountNotification?.self) { group in
                        group.addTask {
                            for await published in heard { return published.notification }
                            return nil
                        }
                        group.addTask {
                            for _ in 0..<25 {
                                let request: API.PasswordReset = try await app.requestReset(scene).decode()
                                try await app.call(.post, "/api/v1/password-resets/\(request.id)/cancel", token: scene.installer.token)
                                try await Task.sleep(for: .milliseconds(200))
                            }
                            return nil
                        }
                        let first = try await group.next() ?? nil
                        group.cancelAll()
                        return first
                    }
                    #expect(received?.accountId == scene.owner.id)
                    #expect(received?.category == .services)

                    // Signing out on node A ends the stream node B holds for that session.
                    let stream = await nodeB.notificationHub.subscribe(accountId: scene.owner.id, session: SessionToken.hash(scene.owner.token))
                    // Node B has just used the token (and remembers it for a moment).
                    #expect(try await nodeB.accounts.authenticate(token: scene.owner.token).id == scene.owner.id)
                    let askedToSignOut = ContinuousClock.now
                    try await app.call(.delete, "/api/v1/sessions", token: scene.owner.token)
                    // Node B refuses the token within a second of the sign-out on node A: from the moment node A answered that
                    // the session ended (a loaded test run took over a second to answer the sign-out itself). Asked before
                    // waiting for the stream to end, so that the time measured is the token's and not the relay's.
                    let signedOut = ContinuousClock.now
                    let answering = signedOut - askedToSignOut
                    var refusedAfter: Duration?
                    while refusedAfter == nil, ContinuousClock.now - signedOut < .seconds(3) {
                        do {
                            _ = try await nodeB.accounts.authenticate(token: scene.owner.token)
                            try await Task.sleep(for: .milliseconds(20))
                        } catch { refusedAfter = ContinuousClock.now - signedOut }
                    }
                    #expect(try #require(refusedAfter) < .seconds(1), "a signed-out token lived \(String(describing: refusedAfter)) on node B (signing out took \(answering))")
                    let ended = try await withThrowingTaskGroup(of: Bool.self) { group in
                        group.addTask {
                            for await _ in stream {}
                            return true
                        }
                        group.addTask {
                            try await Task.sleep(for: .seconds(5))
                            return false
                        }
                        let first = try await group.next() ?? false
                        group.cancelAll()
                        return first
                    }
                    #expect(ended, "node B's stream outlived its session by 5 s")
                }
            }
        }
    }

    /// The owner's bind call reaches node B; the device's channel is on node A: the code check and its signed answer
    /// cross through the relay, and so does the "bound" message.
    @Test func aDeviceIsBoundAndResetThroughANodeThatDoesNotHoldItsChannel() async throws {
        try await TestDatabase.with { location in
            var configuration = LatchkeyConfiguration.testing(database: location)
            defer { configuration.removeTestingKeyFolder() }
            configuration.sweepInterval = .seconds(3600)
            configuration.manufacturerRoots = TestManufacturer.trusted.roots
            configuration.deviceHeartbeatInterval = .milliseconds(500)
            configuration.channelPingInterval = .milliseconds(500)
            // Waits as long as production does for an answer: a question crosses PostgreSQL's NOTIFY twice, with the
            // device verifying, opening and signing in between, and on a loaded CI box that once took over a second
            // (the presence step answered device_offline).
            configuration.channelPingAnswerTimeout = .seconds(5)
            configuration.deviceAnswerTimeout = .seconds(5)
            let clock = ManualClock()
            let nodeA = try await buildPlatform(configuration, clock: clock.clock)
            let nodeB = try await buildPlatform(configuration, clock: clock.clock)
            try await nodeA.application.test(.live) { clientA in
                try await nodeB.application.test(.router) { clientB in
                    let onA = TestPlatform(platform: nodeA, client: clientA, clock: clock)
                    let onB = TestPlatform(platform: nodeB, client: clientB, clock: clock)
                    let device = try await DeviceHarness.start(on: onA)
                    let owner = try await onB.signUp(.owner)
                    let site = try await onB.createSite(by: owner)
                    // Node B's relay listener connects in the background: until it does, the device reads as unreachable.
                    var bound: TestPlatform.Answer?
                    for _ in 0..<20 {
                        bound = try await onB.call(.post, "/api/v1/sites/\(site.id)/devices", token: owner.token,
                                                   body: API.BindDevice(serial: device.serial, verificationCode: device.verificationCode))
                        if bound?.status != .conflict { break }
                        try await Task.sleep(for: .milliseconds(200))
                    }
                    #expect(bound?.status == .created, "\(bound?.text ?? "")")
                    let wrong = try await onB.call(.post, "/api/v1/sites/\(site.id)/devices", token: owner.token,
                                                   body: API.BindDevice(serial: device.serial, verificationCode: "ZZZZZZ"))
                    #expect(wrong.errorCode == .deviceAlreadyBound)

                    // The approval notice and the delivery with the presence code cross the same way.
                    let scene = BoundDeviceScene(owner: owner, installer: try await onB.signUp(.installer, name: "Ivan Installa"),
                                                 site: site, device: device)
                    #expect(try await onB.authorize(scene.installer, on: site, by: owner).status == .created)
                    let request = try await scene.approvedRequest(on: onB, mode: .onSite, newPassword: "Altrove2026")
                    var shown = try await device.local(.POST, "presence-code")
                    for _ in 0..<100 where shown.status != 200 {
                        try await Task.sleep(for: .milliseconds(20))
                        shown = try await device.local(.POST, "presence-code")
                    }
                    let code: LocalAPI.PresenceCode = try shown.decode()
                    let done = try await onB.call(.post, "/api/v1/password-resets/\(request.id)/presence", token: scene.installer.token,
                                                  body: API.PresenceCodeDelivery(presenceCode: code.code))
                    #expect(try done.decode(API.PasswordReset.self).status == .completed, "\(done.text)")
                    #expect(try await device.login("Altrove2026") == 200)
                    await device.stop()
                }
            }
        }
    }
}
