import Foundation
import Hummingbird
import LatchkeyCloud
import LatchkeyProtocol
import Testing

@Suite("Accounts and sessions (API)", .timeLimit(.minutes(3)))
struct AccountAPITests {
    @Test func signUpSignInUseAndSignOut() async throws {
        try await TestPlatform.run { app in
            let owner = try await app.signUp(.owner, email: "Laura@Example.COM")
            #expect(owner.account.email == "laura@example.com")
            #expect(try await app.call(.get, "/api/v1/sites", token: owner.token).status == .ok)
            // The scheme in any case, spaces around the token; nothing else stands for a bearer token.
            for (header, status) in [("BEARER \(owner.token)", HTTPResponse.Status.ok), ("bearer   \(owner.token) ", .ok),
                                     ("Basic \(owner.token)", .unauthorized), ("Bearer", .unauthorized), ("Bearer \(owner.token)x", .unauthorized),
                                     ("Bearer\t\(owner.token)", .unauthorized)] {
                let answer = try await app.client.execute(uri: "/api/v1/sites", method: .get, headers: [.authorization: header]) { $0.status }
                #expect(answer == status, "\(header)")
            }

            let again = try await app.call(.post, "/api/v1/accounts",
                                           body: API.SignUp(email: "laura@example.com", password: "another one 2", name: "L", role: .owner))
            #expect(again.status == .conflict)
            #expect(again.errorCode == .accountExists)

            let wrong = try await app.call(.post, "/api/v1/sessions", body: API.SignIn(email: "laura@example.com", password: "not it at all"))
            #expect(wrong.status == .unauthorized)
            #expect(wrong.errorCode == .unauthenticated)
            let nobody = try await app.call(.post, "/api/v1/sessions", body: API.SignIn(email: "nobody@example.com", password: "whatever1"))
            #expect(nobody.errorMessage == wrong.errorMessage)

            #expect(try await app.call(.delete, "/api/v1/sessions", token: owner.token).status == .noContent)
            let after = try await app.call(.get, "/api/v1/sites", token: owner.token)
            #expect(after.status == .unauthorized)
        }
    }

    @Test func tokensExpire() async throws {
        try await TestPlatform.run { app in
            let owner = try await app.signUp(.owner)
            app.clock.advance(by: 31 * 24 * 3600)
            #expect(try await app.call(.get, "/api/v1/sites", token: owner.token).errorCode == .unauthenticated)
            #expect(try await app.call(.get, "/api/v1/sites", token: "made-up").errorCode == .unauthenticated)
            #expect(try await app.call(.get, "/api/v1/sites").errorCode == .unauthenticated)
        }
    }

    @Test func theAccountPasswordIsStoredAsABcryptHash() async throws {
        try await TestPlatform.run { app in
            let owner = try await app.signUp(.owner)
            let stored = try await app.platform.store.read { try await $0.accounts.find(id: owner.id) }
            #expect(stored?.passwordHash.hasPrefix("$2b$") == true)
            #expect(stored?.passwordHash.contains("correct horse") == false)
        }
    }
}

@Suite("Sites, authorizations and devices (API)", .timeLimit(.minutes(3)))
struct SiteAPITests {
    @Test func ownerCreatesSitesInstallersCannot() async throws {
        try await TestPlatform.run { app in
            let owner = try await app.signUp(.owner)
            let installer = try await app.signUp(.installer)
            let site = try await app.createSite(by: owner, name: "Pizzeria Napoli")
            #expect(site.name == "Pizzeria Napoli")
            #expect(site.ownerId == owner.id)
            let refused = try await app.call(.post, "/api/v1/sites", token: installer.token, body: API.CreateSite(name: "Mine"))
            #expect(refused.status == .forbidden)
            #expect(refused.errorCode == .forbidden)
            let sites: [API.Site] = try await app.call(.get, "/api/v1/sites", token: owner.token).decode()
            #expect(sites.map(\.id) == [site.id])
        }
    }

    @Test func authorizationShowsTheSiteToTheInstallerUntilRevokedOrExpired() async throws {
        try await TestPlatform.run { app in
            let owner = try await app.signUp(.owner)
            let installer = try await app.signUp(.installer)
            let site = try await app.createSite(by: owner)
            #expect(try await app.call(.get, "/api/v1/sites", token: installer.token).decode([API.Site].self).isEmpty)
            #expect(try await app.call(.get, "/api/v1/sites/\(site.id)", token: installer.token).status == .notFound)

            let granted = try await app.authorize(installer, on: site, by: owner, permissions: [.view, .passwordReset],
                                                  expiresAt: app.clock.now + 3600)
            #expect(granted.status == .created)
            let authorization: API.SiteAuthorization = try granted.decode()
            #expect(authorization.permissions == [.passwordReset, .view])
            #expect(authorization.installerEmail == installer.account.email)

            let seenByOwner: API.Site = try await app.call(.get, "/api/v1/sites/\(site.id)", token: owner.token).decode()
            #expect(seenByOwner.authorizations?.map(\.installerId) == [installer.id])
            let seenByInstaller: API.Site = try await app.call(.get, "/api/v1/sites/\(site.id)", token: installer.token).decode()
            #expect(seenByInstaller.authorizations == nil)
            #expect(try await app.call(.get, "/api/v1/sites", token: installer.token).decode([API.Site].self).map(\.id) == [site.id])

            app.clock.advance(by: 3601)
            #expect(try await app.call(.get, "/api/v1/sites", token: installer.token).decode([API.Site].self).isEmpty)

            try await app.authorize(installer, on: site, by: owner)
            #expect(try await app.call(.get, "/api/v1/sites", token: installer.token).decode([API.Site].self).count == 1)
            #expect(try await app.call(.delete, "/api/v1/sites/\(site.id)/authorizations/\(installer.id)", token: owner.token).status == .noContent)
            #expect(try await app.call(.get, "/api/v1/sites/\(site.id)/devices", token: installer.token).status == .notFound)
            #expect(try await app.call(.delete, "/api/v1/sites/\(site.id)/authorizations/\(installer.id)", token: owner.token).status == .notFound)
        }
    }

    @Test func authorizingNeedsAnInstallerAndRealPermissions() async throws {
        try await TestPlatform.run { app in
            let owner = try await app.signUp(.owner)
            let otherOwner = try await app.signUp(.owner)
            let site = try await app.createSite(by: owner)
            let path = "/api/v1/sites/\(site.id)/authorizations"
            let unknown = try await app.call(.post, path, token: owner.token, json: #"{"installerEmail": "ghost@example.com", "permissions": ["view"]}"#)
            #expect(unknown.errorCode == .notFound)
            let notInstaller = try await app.call(.post, path, token: owner.token,
                                                  body: API.GrantAuthorization(installerEmail: otherOwner.account.email, permissions: [.view]))
            #expect(notInstaller.errorCode == .invalidRequest)
            let installer = try await app.signUp(.installer)
            let none = try await app.call(.post, path, token: owner.token, json: #"{"installerEmail": "\#(installer.account.email)", "permissions": []}"#)
            #expect(none.errorCode == .invalidRequest)
            let bogus = try await app.call(.post, path, token: owner.token, json: #"{"installerEmail": "\#(installer.account.email)", "permissions": ["root"]}"#)
            #expect(bogus.errorCode == .invalidRequest)
            #expect(bogus.errorMessage?.contains("view, configure, password_reset") == true)
            let past = try await app.authorize(installer, on: site, by: owner, expiresAt: app.clock.now - 1)
            #expect(past.errorCode == .invalidRequest)
            let byStranger = try await app.authorize(installer, on: site, by: otherOwner)
            #expect(byStranger.status == .notFound)
            let site2: API.Site = try await app.call(.get, "/api/v1/sites/\(site.id)", token: owner.token).decode()
            #expect(site2.authorizations?.isEmpty == true)
        }
    }

    @Test func devicesListWithOnlineStatusAndCompatibility() async throws {
        try await TestPlatform.run { app in
            let owner = try await app.signUp(.owner)
            let stranger = try await app.signUp(.owner)
            let site = try await app.createSite(by: owner)
            try await app.addDevice(serial: "NVR-1", on: site)
            try await app.addDevice(serial: "CAM-OLD", model: "DS-2CD1043G0-I", firmware: "V5.5.0", type: .camera, on: site)
            let devices: [API.Device] = try await app.call(.get, "/api/v1/sites/\(site.id)/devices", token: owner.token).decode()
            #expect(devices.map(\.serial) == ["CAM-OLD", "NVR-1"])
            #expect(devices.map(\.compatible) == [false, true])
            #expect(devices.allSatisfy { $0.online && $0.siteId == site.id })
            #expect(try await app.call(.get, "/api/v1/sites/\(site.id)/devices", token: stranger.token).status == .notFound)
        }
    }

    @Test func compatibilityListIsPublicAndSearchable() async throws {
        try await TestPlatform.run { app in
            let all: [API.CompatibilityEntry] = try await app.call(.get, "/api/v1/compatibility").decode()
            #expect(all.count >= 15)
            let found: [API.CompatibilityEntry] = try await app.call(.get, "/api/v1/compatibility?model=kv6113").decode()
            #expect(found == [.init(model: "DS-KV6113-WPE1", deviceType: .doorStation, minFirmware: "V2.2.45")])
        }
    }
}
