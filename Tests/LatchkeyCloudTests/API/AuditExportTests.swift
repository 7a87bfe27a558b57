import Foundation
import Hummingbird
@testable import LatchkeyCloud
import LatchkeyProtocol
import Testing

/// A device's and a site's history as their owner reads and exports it: only what happened under the owner's own
/// binding, as JSON and as CSV a spreadsheet opens; nobody else may export it.
@Suite("Audit history and its export", .timeLimit(.minutes(2)))
struct AuditExportTests {
    @Test func aReboundDeviceShowsItsNewOwnerOnlyWhatHappenedUnderTheirBinding() async throws {
        try await TestPlatform.run(.live) { app in
            let device = try await DeviceHarness.start(on: app)
            let first = try #require(try await BoundDeviceScene.bind(device, on: app))
            let earlier = try await first.approvedRequest(on: app, mode: .offSite)
            #expect(try await app.call(.delete, "/api/v1/sites/\(first.site.id)/devices/\(device.serial)", token: first.owner.token).status
                == .noContent)
            let second = try #require(try await BoundDeviceScene.bind(device, on: app))
            let history: [API.AuditEntry] = try await app.call(.get, "/api/v1/devices/\(device.serial)/audit", token: second.owner.token).decode()
            #expect(history.contains { $0.action == "device.bound" && $0.actorId == second.owner.id })
            #expect(!history.contains { $0.requestId == earlier.id }, "the previous owner's reset is not the new owner's business")
            #expect(!history.contains { $0.actorId == first.owner.id })
            // The previous owner no longer reads it either.
            #expect(try await app.call(.get, "/api/v1/devices/\(device.serial)/audit", token: first.owner.token).status == .notFound)
            await device.stop()
        }
    }

    @Test func theOwnerExportsADevicesAndASitesHistoryAsCSVAndJSON() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            let request: API.PasswordReset = try await app.requestReset(scene).decode()
            try await app.call(.post, "/api/v1/password-resets/\(request.id)/decline", token: scene.owner.token)

            let csv = try await app.call(.get, "/api/v1/devices/\(scene.device.serial)/audit?format=csv", token: scene.owner.token)
            #expect(csv.status == .ok)
            let rows = Self.csvRows(csv.text)
            #expect(rows.first == ["sequence", "at", "actor_id", "actor", "site_id", "device", "request_id", "action", "outcome", "detail"])
            let requested = try #require(rows.first { $0.count == 10 && $0[7] == "reset.requested" })
            #expect(requested[3] == "Ivan Installa" && requested[6] == request.id.uuidString)
            #expect(rows.contains { $0.count == 10 && $0[7] == "reset.declined" })

            let site: [API.AuditEntry] = try await app.call(.get, "/api/v1/sites/\(scene.site.id)/audit", token: scene.owner.token).decode()
            #expect(site.contains { $0.action == "authorization.granted" })
            #expect(site.contains { $0.action == "reset.requested" && $0.actorName == "Ivan Installa" })
            let siteCSV = try await app.call(.get, "/api/v1/sites/\(scene.site.id)/audit?format=csv", token: scene.owner.token)
            #expect(Self.csvRows(siteCSV.text).count == site.count + 1)

            // The installer authorized on the site is refused the owner's export; a stranger does not see the site.
            #expect(try await app.call(.get, "/api/v1/sites/\(scene.site.id)/audit", token: scene.installer.token).errorCode == .forbidden)
            #expect(try await app.call(.get, "/api/v1/devices/\(scene.device.serial)/audit", token: scene.installer.token).status == .notFound)
            let stranger = try await app.signUp(.owner)
            #expect(try await app.call(.get, "/api/v1/sites/\(scene.site.id)/audit", token: stranger.token).errorCode == .notFound)
            #expect(try await app.call(.get, "/api/v1/sites/\(scene.site.id)/audit?format=xml", token: scene.owner.token).errorCode
                == .invalidRequest)
        }
    }

    /// A name that looks like a formula is text in the spreadsheet, not a formula it runs.
    @Test func csvCellsCannotBecomeFormulas() {
        #expect(AuditCSV.cell("=HYPERLINK(\"http://evil\")") == "\"'=HYPERLINK(\"\"http://evil\"\")\"")
        #expect(AuditCSV.cell("+1") == "'+1")
        #expect(AuditCSV.cell("Rossi, Laura") == "\"Rossi, Laura\"")
        #expect(AuditCSV.cell("two\nlines") == "\"two\nlines\"")
    }

    /// RFC 4180, as a spreadsheet reads it.
    static func csvRows(_ text: String) -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var cell = ""
        var quoted = false
        var characters = Array(text)[...]
        while let character = characters.popFirst() {
            if quoted {
                if character == "\"" {
                    if characters.first == "\"" { cell.append("\""); characters.removeFirst() } else { quoted = false }
                } else { cell.append(character) }
            } else if character == "\"" { quoted = true }
            else if character == "," { row.append(cell); cell = "" }
            else if character == "\r\n" || character == "\n" { row.append(cell); rows.append(row); row = []; cell = "" }
            else { cell.append(character) }
        }
        if !cell.isEmpty || !row.isEmpty { row.append(cell); rows.append(row) }
        return rows
    }
}
