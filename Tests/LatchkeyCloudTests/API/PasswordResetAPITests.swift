import Foundation
import Hummingbird
import LatchkeyCloud
import LatchkeyProtocol
import Testing

@Suite("Password reset requests (API)", .timeLimit(.minutes(3)))
struct PasswordResetAPITests {
    @Test func offSiteRequestIsOpenForADayAndNotifiesTheOwner() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            let answer = try await app.requestReset(scene, mode: .offSite)
            #expect(answer.status == .created)
            let request: API.PasswordReset = try answer.decode()
            #expect(request.status == .pending)
            #expect(request.mode == .offSite)
            #expect(request.expiresAt == app.clock.now + 24 * 3600)
            #expect(request.ownerEmailMasked == "lm...@gmail.com")
            #expect(request.reminder?.contains("same LAN") == true)
            #expect(request.deviceSerial == scene.device.serial)
            #expect(request.siteId == scene.site.id)
            #expect(request.installerId == scene.installer.id)

            let inbox = try await app.notifications(of: scene.owner, category: "services")
            let notice = try #require(inbox.first)
            #expect(inbox.count == 1)
            #expect(notice.title == "Reset device password")
            #expect(notice.kind == .resetRequested)
            #expect(notice.requestId == request.id)
            #expect(notice.body.contains(scene.device.serial))
            #expect(notice.body.contains(scene.site.name))
            #expect(notice.body.contains("Ivan Installa"))
            #expect(notice.body.contains("24 hours"))
            #expect(try await app.notifications(of: scene.installer).isEmpty)
        }
    }

    @Test func onSiteRequestIsOpenForFiveMinutes() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            let request: API.PasswordReset = try await app.requestReset(scene, mode: .onSite).decode()
            #expect(request.expiresAt == app.clock.now + 300)
            let notice = try #require(try await app.notifications(of: scene.owner).first)
            #expect(notice.body.contains("5 minutes"))
        }
    }

    @Test func onlyAnInstallerHoldingPasswordResetMayRequest() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene(permissions: [.view])
            let refused = try await app.requestReset(scene)
            #expect(refused.status == .forbidden)
            #expect(refused.errorCode == .siteNotAuthorized)
            #expect(refused.errorMessage?.contains("password_reset") == true)

            let byOwner = try await app.call(.post, "/api/v1/devices/\(scene.device.serial)/password-resets", token: scene.owner.token,
                                             body: API.RequestPasswordReset(mode: .offSite))
            #expect(byOwner.errorCode == .forbidden)

            let stranger = try await app.signUp(.installer)
            let unauthorized = try await app.call(.post, "/api/v1/devices/\(scene.device.serial)/password-resets", token: stranger.token,
                                                  body: API.RequestPasswordReset(mode: .offSite))
            #expect(unauthorized.status == .notFound)
            let unknown = try await app.call(.post, "/api/v1/devices/NO-SUCH/password-resets", token: scene.installer.token,
                                             body: API.RequestPasswordReset(mode: .offSite))
            #expect(unknown.status == .notFound)

            #expect(try await app.call(.get, "/api/v1/password-resets", token: scene.installer.token).decode([API.PasswordReset].self).isEmpty)
            #expect(try await app.notifications(of: scene.owner).isEmpty)
        }
    }

    @Test func anExpiredAuthorizationRequestsNothing() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            try await app.authorize(scene.installer, on: scene.site, by: scene.owner, expiresAt: app.clock.now + 60)
            app.clock.advance(by: 61)
            let refused = try await app.requestReset(scene)
            #expect(refused.errorCode == .siteNotAuthorized)
            #expect(refused.errorMessage?.contains("expired") == true)
        }
    }

    @Test func anIncompatibleDeviceIsRefusedNamingModelFirmwareAndMinimum() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            let old = try await app.addDevice(serial: "CAM-OLD", model: "DS-2CD1043G0-I", firmware: "V5.5.0", type: .camera, on: scene.site)
            let refused = try await app.call(.post, "/api/v1/devices/\(old.serial)/password-resets", token: scene.installer.token,
                                             body: API.RequestPasswordReset(mode: .onSite))
            #expect(refused.status == .unprocessableContent)
            #expect(refused.errorCode == .deviceNotCompatible)
            let message = try #require(refused.errorMessage)
            #expect(message.contains("DS-2CD1043G0-I") && message.contains("V5.5.0") && message.contains("V5.5.800"))

            let unlisted = try await app.addDevice(serial: "OTHER", model: "ACME-1", firmware: "V9.9.9", type: .camera, on: scene.site)
            let unlistedAnswer = try await app.call(.post, "/api/v1/devices/\(unlisted.serial)/password-resets", token: scene.installer.token,
                                                    body: API.RequestPasswordReset(mode: .onSite))
            #expect(unlistedAnswer.errorCode == .deviceNotCompatible)
        }
    }

    @Test func oneOpenRequestPerDeviceUntilItEnds() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            #expect(try await app.requestReset(scene, mode: .onSite).status == .created)
            let second = try await app.requestReset(scene, mode: .offSite)
            #expect(second.status == .conflict)
            #expect(second.errorCode == .requestAlreadyOpen)

            app.clock.advance(by: 301)
            let afterExpiry = try await app.requestReset(scene, mode: .offSite)
            #expect(afterExpiry.status == .created)
            let all: [API.PasswordReset] = try await app.call(.get, "/api/v1/password-resets", token: scene.installer.token).decode()
            #expect(all.map(\.status).sorted { $0.rawValue < $1.rawValue } == [.expired, .pending])
        }
    }

    @Test func expiredRequestsReadAsExpiredAndRefuseEveryAction() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            let request: API.PasswordReset = try await app.requestReset(scene, mode: .onSite).decode()
            app.clock.advance(by: 299)
            #expect(try await app.call(.get, "/api/v1/password-resets/\(request.id)", token: scene.owner.token).decode(API.PasswordReset.self).status == .pending)
            app.clock.advance(by: 1)
            #expect(try await app.call(.get, "/api/v1/password-resets/\(request.id)", token: scene.owner.token).decode(API.PasswordReset.self).status == .expired)
            let expiredList: [API.PasswordReset] = try await app.call(.get, "/api/v1/password-resets?status=expired", token: scene.owner.token).decode()
            #expect(expiredList.map(\.id) == [request.id])

            let approve = try await app.call(.post, "/api/v1/password-resets/\(request.id)/approve", token: scene.owner.token,
                                             body: API.ApprovePasswordReset(sealedPassword: sampleSealedPassword))
            #expect(approve.status == .gone)
            #expect(approve.errorCode == .requestExpired)
            for (action, person) in [("decline", scene.owner), ("cancel", scene.installer)] {
                let answer = try await app.call(.post, "/api/v1/password-resets/\(request.id)/\(action)", token: person.token)
                #expect(answer.status == .gone)
                #expect(answer.errorCode == .requestExpired)
            }
            // The first refused action wrote the expiry down and told both sides, once.
            #expect(try await app.notifications(of: scene.owner).filter { $0.kind == .resetExpired }.count == 1)
            #expect(try await app.notifications(of: scene.installer).filter { $0.kind == .resetExpired }.count == 1)
        }
    }

    @Test func theSweeperExpiresAndNotifiesWithoutAnyoneReading() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            let request: API.PasswordReset = try await app.requestReset(scene, mode: .offSite).decode()
            app.clock.advance(by: 12 * 3600)
            #expect(try await app.platform.passwordResets.expireDue() == 0)
            app.clock.advance(by: 12 * 3600)
            #expect(try await app.platform.passwordResets.expireDue() == 1)
            #expect(try await app.platform.passwordResets.expireDue() == 0)
            let installerNotice = try #require(try await app.notifications(of: scene.installer, category: "services").first)
            #expect(installerNotice.kind == .resetExpired)
            #expect(installerNotice.requestId == request.id)
            let stored = try await app.platform.store.read { try await $0.resetRequests.find(id: request.id) }
            #expect(stored?.storedStatus == .expired)
        }
    }

    @Test func theOwnerApprovesWithASealedPasswordOnly() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            let request: API.PasswordReset = try await app.requestReset(scene, mode: .onSite).decode()
            let path = "/api/v1/password-resets/\(request.id)/approve"

            let byInstaller = try await app.call(.post, path, token: scene.installer.token, body: API.ApprovePasswordReset(sealedPassword: sampleSealedPassword))
            #expect(byInstaller.status == .forbidden)
            let clear = try await app.call(.post, path, token: scene.owner.token, body: API.ApprovePasswordReset(sealedPassword: "NuovaPass2024"))
            #expect(clear.status == .badRequest)
            #expect(try await app.call(.get, "/api/v1/password-resets/\(request.id)", token: scene.owner.token).decode(API.PasswordReset.self).status == .pending)

            let approved: API.PasswordReset = try await app.call(.post, path, token: scene.owner.token,
                                                                 body: API.ApprovePasswordReset(sealedPassword: sampleSealedPassword)).decode()
            #expect(approved.status == .approved)
            let stored = try await app.platform.store.read { try await $0.resetRequests.find(id: request.id) }
            #expect(stored?.sealedPassword == sampleSealedPassword)
            let again = try await app.call(.post, path, token: scene.owner.token, body: API.ApprovePasswordReset(sealedPassword: sampleSealedPassword))
            #expect(again.status == .conflict)
            #expect(again.errorCode == .requestNotPending)

            let installerInbox = try await app.notifications(of: scene.installer)
            #expect(installerInbox.map(\.kind) == [.resetApproved])
            #expect(installerInbox.first?.body.contains("Complete it now from the device's LAN") == true)
        }
    }

    @Test func concurrentApprovalsLetExactlyOneThrough() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            let request: API.PasswordReset = try await app.requestReset(scene).decode()
            // Straight at the service, so the approvals really overlap on separate database connections.
            let owner = try #require(try await app.platform.store.read { try await $0.accounts.find(id: scene.owner.id) })
            let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        do {
                            _ = try await app.platform.passwordResets.approve(id: request.id, sealedPassword: sampleSealedPassword, by: owner)
                            return true
                        } catch LatchkeyError.requestNotPending {
                            return false
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 }.count == 1)
            #expect(outcomes.filter { !$0 }.count == 5)
            let history: [API.AuditEntry] = try await app.call(.get, "/api/v1/devices/\(scene.device.serial)/audit", token: scene.owner.token).decode()
            #expect(history.filter { $0.action == "reset.approved" && $0.outcome == "approved" }.count == 1)
        }
    }

    @Test func declineAndCancelEndTheRequestForBothSides() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            let first: API.PasswordReset = try await app.requestReset(scene).decode()
            let declined: API.PasswordReset = try await app.call(.post, "/api/v1/password-resets/\(first.id)/decline", token: scene.owner.token).decode()
            #expect(declined.status == .declined)
            #expect(try await app.notifications(of: scene.installer).map(\.kind) == [.resetDeclined])

            let second: API.PasswordReset = try await app.requestReset(scene).decode()
            #expect(try await app.call(.post, "/api/v1/password-resets/\(second.id)/cancel", token: scene.owner.token).status == .forbidden)
            let cancelled: API.PasswordReset = try await app.call(.post, "/api/v1/password-resets/\(second.id)/cancel", token: scene.installer.token).decode()
            #expect(cancelled.status == .cancelled)
            #expect(try await app.notifications(of: scene.owner).contains { $0.kind == .resetCancelled && $0.requestId == second.id })
            let again = try await app.call(.post, "/api/v1/password-resets/\(second.id)/cancel", token: scene.installer.token)
            #expect(again.errorCode == .requestNotPending)
        }
    }

    @Test func revokingTheAuthorizationCancelsTheInstallersOpenRequests() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            let request: API.PasswordReset = try await app.requestReset(scene).decode()
            #expect(try await app.call(.delete, "/api/v1/sites/\(scene.site.id)/authorizations/\(scene.installer.id)", token: scene.owner.token).status == .noContent)
            // The installer can no longer see the request's site, but still sees the request end.
            let seen: API.PasswordReset = try await app.call(.get, "/api/v1/password-resets/\(request.id)", token: scene.installer.token).decode()
            #expect(seen.status == .cancelled)
            let notice = try #require(try await app.notifications(of: scene.installer).first)
            #expect(notice.kind == .resetCancelled)
            #expect(notice.body.contains("revoked"))
        }
    }

    @Test func otherTenantsSeeNothing() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            let request: API.PasswordReset = try await app.requestReset(scene).decode()
            let otherOwner = try await app.signUp(.owner)
            let otherInstaller = try await app.signUp(.installer)
            for person in [otherOwner, otherInstaller] {
                #expect(try await app.call(.get, "/api/v1/password-resets/\(request.id)", token: person.token).status == .notFound)
                #expect(try await app.call(.post, "/api/v1/password-resets/\(request.id)/decline", token: person.token).status == .notFound)
                #expect(try await app.call(.get, "/api/v1/password-resets", token: person.token).decode([API.PasswordReset].self).isEmpty)
                #expect(try await app.call(.get, "/api/v1/devices/\(scene.device.serial)/audit", token: person.token).status == .notFound)
            }
            #expect(try await app.call(.get, "/api/v1/password-resets/\(request.id)", token: scene.owner.token).decode(API.PasswordReset.self).status == .pending)
        }
    }

    @Test func everyTransitionIsInTheDevicesAuditHistory() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            let request: API.PasswordReset = try await app.requestReset(scene, mode: .onSite).decode()
            try await app.call(.post, "/api/v1/password-resets/\(request.id)/approve", token: scene.installer.token,
                               body: API.ApprovePasswordReset(sealedPassword: sampleSealedPassword))
            try await app.call(.post, "/api/v1/password-resets/\(request.id)/approve", token: scene.owner.token,
                               body: API.ApprovePasswordReset(sealedPassword: sampleSealedPassword))
            app.clock.advance(by: 600)
            try await app.call(.post, "/api/v1/password-resets/\(request.id)/decline", token: scene.owner.token)

            let history: [API.AuditEntry] = try await app.call(.get, "/api/v1/devices/\(scene.device.serial)/audit", token: scene.owner.token).decode()
            #expect(history.map(\.action) == ["reset.requested", "reset.approved", "reset.approved", "reset.expired"])
            #expect(history.map(\.outcome) == ["pending", "refused: forbidden", "approved", "expired"])
            #expect(history.map(\.actorId) == [scene.installer.id, scene.installer.id, scene.owner.id, nil])
            #expect(history.allSatisfy { $0.requestId == request.id })
            #expect(try await app.call(.get, "/api/v1/devices/\(scene.device.serial)/audit", token: scene.installer.token).status == .notFound)
        }
    }
}
