import Foundation
import Hummingbird
import LatchkeyClient
@testable import LatchkeyCloud
import LatchkeyProtocol
import Testing

/// Lists that can grow come a page at a time (`?limit`, `?cursor`, the next page in `Link`), each item once, in order,
/// on SQLite and PostgreSQL.
@Suite("Lists a page at a time", .timeLimit(.minutes(3)))
struct PaginationTests {
    /// The `Link: <…>; rel="next"` target, if any.
    static func next(_ answer: TestPlatform.Answer) -> String? {
        guard let link = answer.headers[.init("Link")!] else { return nil }
        #expect(link.hasSuffix(">; rel=\"next\""), "\(link)")
        return String(link.dropFirst().prefix { $0 != ">" })
    }

    /// Follows the links from `first`, answering the pages' items in order.
    static func walk<Item: Decodable & Sendable>(_ app: TestPlatform, _ first: String, token: String, as item: Item.Type)
        async throws -> [[Item]]
    {
        var pages: [[Item]] = []
        var path: String? = first
        while let current = path, pages.count < 50 {
            let answer = try await app.call(.get, current, token: token)
            #expect(answer.status == .ok, "\(current): \(answer.text)")
            pages.append(try answer.decode([Item].self))
            path = next(answer)
        }
        return pages
    }

    @Test func anOwnersSitesComeAPageAtATimeEachOnceInTheOrderMade() async throws {
        try await TestPlatform.run { app in
            let owner = try await app.signUp(.owner)
            // Made in the same instant (the test clock stands still): the order falls back on the id, and no tie is lost.
            var made: [UUID] = []
            for index in 0..<5 { made.append(try await app.createSite(by: owner, name: "Site \(index)").id) }
            let pages = try await Self.walk(app, "/api/v1/sites?limit=2", token: owner.token, as: API.Site.self)
            #expect(pages.map(\.count) == [2, 2, 1])
            let listed = pages.flatMap { $0.map(\.id) }
            #expect(Set(listed) == Set(made) && listed.count == 5)
            #expect(listed == made.sorted { $0.uuidString < $1.uuidString })
            // Without a limit, the first 100 and no link.
            let all = try await app.call(.get, "/api/v1/sites", token: owner.token)
            #expect(try all.decode([API.Site].self).count == 5 && Self.next(all) == nil)
        }
    }

    @Test func aBadLimitOrCursorIsRefusedWithARemedyAndChangesNothing() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            for query in ["limit=0", "limit=501", "limit=ten", "limit=-1", "cursor=not-a-cursor", "cursor=%00", "cursor="] {
                let answer = try await app.call(.get, "/api/v1/sites?\(query)", token: scene.owner.token)
                #expect(answer.status == .badRequest, "\(query): \(answer.status)")
                #expect(answer.errorCode == .invalidRequest)
            }
            // A cursor of one list given to another.
            _ = try await app.addDevice(serial: "PAGE-B", on: scene.site)
            let devices = try await app.call(.get, "/api/v1/sites/\(scene.site.id)/devices?limit=1", token: scene.owner.token)
            let cursor = try #require(Self.next(devices)?.split(separator: "cursor=").last)
            let crossed = try await app.call(.get, "/api/v1/notifications?cursor=\(cursor)", token: scene.owner.token)
            #expect(crossed.status == .badRequest)
            #expect(crossed.errorMessage?.contains("another list") == true)
        }
    }

    @Test func aSitesDevicesComeBySerialAndTheLinkKeepsTheFilters() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            for serial in ["PAGE-C", "PAGE-A", "PAGE-E", "PAGE-B"] { _ = try await app.addDevice(serial: serial, on: scene.site) }
            for person in [scene.owner, scene.installer] {
                let pages = try await Self.walk(app, "/api/v1/sites/\(scene.site.id)/devices?limit=2", token: person.token, as: API.Device.self)
                #expect(pages.flatMap { $0.map(\.serial) } == ([scene.device.serial, "PAGE-A", "PAGE-B", "PAGE-C", "PAGE-E"]).sorted())
                #expect(pages.map(\.count) == [2, 2, 1])
            }
            // Another caller's filters stay in the next page's link.
            let requests = try await app.call(.get, "/api/v1/password-resets?status=pending&limit=1", token: scene.installer.token)
            #expect(Self.next(requests) == nil)
            for serial in ["PAGE-A", "PAGE-B"] {
                #expect(try await app.call(.post, "/api/v1/devices/\(serial)/password-resets", token: scene.installer.token,
                                           body: API.RequestPasswordReset(mode: .offSite)).status == .created)
            }
            let first = try await app.call(.get, "/api/v1/password-resets?status=pending&limit=1", token: scene.installer.token)
            let link = try #require(Self.next(first))
            #expect(link.hasPrefix("/api/v1/password-resets?") && link.contains("status=pending") && link.contains("limit=1"))
        }
    }

    /// A site's devices are read in one statement with the site and the reader's authorization: the site still answers
    /// when it has no devices or none past the cursor, and stays hidden from whoever does not see it.
    @Test func aSitesDevicesAnswerForTheSiteItselfWhenThereAreNoneToShow() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            _ = try await app.addDevice(serial: "PAGE-B", on: scene.site)
            let devices = "/api/v1/sites/\(scene.site.id)/devices"
            // Exactly a page: no link to an empty one.
            let full = try await app.call(.get, "\(devices)?limit=2", token: scene.installer.token)
            #expect(try full.decode([API.Device].self).count == 2 && Self.next(full) == nil)
            // Past the last serial: an empty page, not a missing site.
            let past = try await app.call(.get, "\(devices)?cursor=\(PageCursor.key("ZZZ").text)", token: scene.installer.token)
            #expect(try past.status == .ok && (past.decode([API.Device].self)).isEmpty && Self.next(past) == nil, "\(past.text)")
            // A site with no devices.
            let empty = try await app.createSite(by: scene.owner, name: "Empty")
            let none = try await app.call(.get, "/api/v1/sites/\(empty.id)/devices", token: scene.owner.token)
            #expect(try none.status == .ok && (none.decode([API.Device].self)).isEmpty, "\(none.text)")
            // Nobody else sees them: another owner, an installer never authorized there, one whose authorization ended.
            let stranger = try await app.signUp(.owner)
            let otherInstaller = try await app.signUp(.installer)
            // And a site that does not exist.
            for (siteId, person) in [(scene.site.id, stranger), (scene.site.id, otherInstaller), (empty.id, scene.installer), (UUID(), scene.owner)] {
                let answer = try await app.call(.get, "/api/v1/sites/\(siteId)/devices", token: person.token)
                #expect(answer.status == .notFound, "\(answer.status) \(answer.text)")
            }
            #expect(try await app.call(.delete, "/api/v1/sites/\(scene.site.id)/authorizations/\(scene.installer.id)",
                                       token: scene.owner.token).status == .noContent)
            #expect(try await app.call(.get, devices, token: scene.installer.token).status == .notFound)
            #expect(try await app.call(.get, devices, token: scene.owner.token).status == .ok)
        }
    }

    /// The status filter is the database's, expiry applied: an expired request is found among thousands of others
    /// without reading them all, and each page is full.
    @Test func requestsAreFilteredByStatusBeforeTheyArePaged() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            var ids: [UUID] = []
            for index in 0..<3 {
                let device = try await app.addDevice(serial: "PAGE-R\(index)", on: scene.site)
                let created: API.PasswordReset = try await app.call(
                    .post, "/api/v1/devices/\(device.serial)/password-resets", token: scene.installer.token,
                    body: API.RequestPasswordReset(mode: .offSite)).decode()
                ids.append(created.id)
                app.clock.advance(by: 1)
            }
            #expect(try await app.call(.post, "/api/v1/password-resets/\(ids[1])/cancel", token: scene.installer.token).status == .ok)
            // Past the off-site window: the two still open are expired (not yet written so), the cancelled one stays so.
            app.clock.advance(by: 25 * 3600)
            let expired = try await Self.walk(app, "/api/v1/password-resets?status=expired&limit=1", token: scene.owner.token,
                                              as: API.PasswordReset.self)
            #expect(expired.map { $0.map(\.id) } == [[ids[2]], [ids[0]]])
            #expect(expired.joined().allSatisfy { $0.status == .expired })
            let pending = try await app.call(.get, "/api/v1/password-resets?status=pending", token: scene.owner.token)
            #expect(try pending.decode([API.PasswordReset].self).isEmpty)
            let cancelled = try await app.call(.get, "/api/v1/password-resets?status=cancelled", token: scene.owner.token)
            #expect(try cancelled.decode([API.PasswordReset].self).map(\.id) == [ids[1]])
        }
    }

    /// A notification that arrives while someone reads older pages neither shifts them nor shows twice.
    @Test func theInboxPagesOnWithoutGapsWhileNewNotificationsArrive() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            for _ in 0..<3 {
                let created: API.PasswordReset = try await app.requestReset(scene).decode()
                app.clock.advance(by: 1)
                #expect(try await app.call(.post, "/api/v1/password-resets/\(created.id)/cancel", token: scene.installer.token).status == .ok)
                app.clock.advance(by: 1)
            }
            let before = try await app.notifications(of: scene.owner)
            #expect(before.count == 6)
            let first = try await app.call(.get, "/api/v1/notifications?limit=4", token: scene.owner.token)
            let firstPage = try first.decode([API.Notification].self)
            // A new request now: newest first, it belongs before the first page, not in the second.
            _ = try await app.requestReset(scene)
            let second = try await app.call(.get, try #require(Self.next(first)), token: scene.owner.token)
            let secondPage = try second.decode([API.Notification].self)
            #expect((firstPage + secondPage).map(\.id) == before.map(\.id))
            #expect(Self.next(second) == nil)
        }
    }

    /// An installer's sites are those with a live authorization, counted before the page is cut: a page is never short
    /// because an authorization expired.
    @Test func anInstallersExpiredAuthorizationsLeaveNoHoleInAPage() async throws {
        try await TestPlatform.run { app in
            let installer = try await app.signUp(.installer)
            var live: [UUID] = []
            for index in 0..<4 {
                let owner = try await app.signUp(.owner)
                let site = try await app.createSite(by: owner, name: "Site \(index)")
                let expires = index % 2 == 0 ? app.clock.now + 3600 : nil
                #expect(try await app.authorize(installer, on: site, by: owner, expiresAt: expires).status == .created)
                if expires == nil { live.append(site.id) }
                app.clock.advance(by: 1)
            }
            app.clock.advance(by: 7200)
            let page = try await app.call(.get, "/api/v1/sites?limit=2", token: installer.token)
            #expect(try page.decode([API.Site].self).map(\.id) == live)
            #expect(Self.next(page) == nil)
        }
    }

    /// The SDK (and so the CLI) follows the links: every site, not the first page.
    @Test func theClientReadsEveryPage() async throws {
        try await TestPlatform.run(.live) { app in
            let owner = try await app.signUp(.owner)
            for index in 0..<105 { _ = try await app.createSite(by: owner, name: "Site \(index)") }
            var client = LatchkeyClient(server: "http://127.0.0.1:\(try #require(app.client.port))")
            client.token = owner.token
            let sites = try await client.sites()
            #expect(sites.count == 105 && Set(sites.map(\.id)).count == 105)
        }
    }

    /// The portal's lists: the sites page shows 20 sites and the first 10 devices of each, with links to the rest.
    @Test func thePortalsSitesPageLinksToMoreSitesAndMoreDevices() async throws {
        try await TestPlatform.run { app in
            let owner = try await app.signUp(.owner)
            var sites: [API.Site] = []
            for index in 0..<21 {
                sites.append(try await app.createSite(by: owner, name: "Site \(index)"))
                app.clock.advance(by: 1)
            }
            try await app.platform.store.transaction { [sites] session in
                for index in 0..<11 {
                    try await session.devices.save(Device(serial: "PORTAL-\(index)", model: "DS-2CD2143G2-I", deviceType: .camera,
                                                          firmware: "V5.7.3", siteId: sites[0].id, online: true))
                }
                // Exactly as many as a site shows: all of them, and no link to more.
                for index in 0..<10 {
                    try await session.devices.save(Device(serial: "EXACT-\(index)", model: "DS-2CD2143G2-I", deviceType: .camera,
                                                          firmware: "V5.7.3", siteId: sites[1].id, online: true))
                }
            }
            let cookie = "lk_session=\(owner.token); lk_csrf=\(String(repeating: "c", count: 43))"
            func page(_ path: String) async throws -> String {
                try await app.client.execute(uri: path, method: .get, headers: [.cookie: cookie, .acceptLanguage: "it"]) {
                    #expect($0.status == .ok, "\(path)")
                    return String(buffer: $0.body)
                }
            }
            let first = try await page("/sites")
            #expect(first.components(separatedBy: "class=\"card site\"").count - 1 == 20)
            #expect(first.contains("Altri dispositivi di questo sito") && first.contains("href=\"/sites/\(sites[0].id)\""))
            // By serial as text (PORTAL-0, -1, -10, -2, …), the 11th is PORTAL-9: on the site's own page, not here.
            #expect(first.contains("PORTAL-8") && !first.contains(/PORTAL-9(?![0-9])/))
            #expect((0..<10).allSatisfy { first.contains("EXACT-\($0)<") })
            #expect(first.components(separatedBy: "Altri dispositivi di questo sito").count - 1 == 1, "only the site of 11 has more")
            let nextLink = try #require(first.firstMatch(of: /href="([^"]+)" rel="next"/)?.1)
            let second = try await page(String(nextLink).replacingOccurrences(of: "&amp;", with: "&"))
            #expect(second.components(separatedBy: "class=\"card site\"").count - 1 == 1)
            #expect(second.contains("Site 20") && !second.contains("rel=\"next\""))
        }
    }
}
