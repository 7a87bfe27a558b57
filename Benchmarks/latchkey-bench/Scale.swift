import AsyncHTTPClient
import FluentKit
import Foundation
import Histogram
import LatchkeyCloud
import LatchkeyProtocol
import SQLKit

/// A large database: 100,000 sites with about a million devices (bulk inserts), an installer authorized on 500 sites
/// and an owner with 2,000 devices (20 sites of 100) and a long history; then the lists and pages those two open all
/// day, timed one by one (HdrHistogram) against `latchkey serve` in its own process.
struct ScaleRun {
    let client: HTTPClient
    let seconds: Double
    /// One person at a time, then several at once on the 2 cores the server shares with the callers.
    static let callers = [1, 4]
    /// Sites in all; each filler site has 10 devices.
    var sites = 100_000

    enum Read: String, CaseIterable {
        case installerSites = "installer: GET /api/v1/sites (first 100 of 500)"
        case installerSitesLater = "installer: GET /api/v1/sites?cursor= (page 4 of 5)"
        case installerDevices = "installer: GET /api/v1/sites/{id}/devices (10)"
        case installerPortalSites = "installer: portal GET /sites (20 sites × 10 devices)"
        case ownerSites = "owner: GET /api/v1/sites (20)"
        case ownerDevices = "owner: GET /api/v1/sites/{id}/devices (100)"
        case ownerRequests = "owner: GET /api/v1/password-resets (first 100 of 1,000)"
        case ownerNotifications = "owner: GET /api/v1/notifications (first 100 of 2,000)"
        case ownerPortalSites = "owner: portal GET /sites (20 sites × 10 devices)"
        case ownerPortalSite = "owner: portal GET /sites/{id} (50 of 100 devices)"
        case ownerPortalNotifications = "owner: portal GET /notifications (100)"
        case ownerPortalRequests = "owner: portal GET /requests (100)"
    }

    struct Stats {
        /// Milliseconds.
        var p50, p99, max: Double
        var count: UInt64
    }

    struct Result {
        var seedSeconds: Double
        var devices: Int
        /// By read, by callers at once.
        var percentiles: [Read: [Int: Stats]]
    }

    func run(backends: [(String, DatabaseLocation)], directory: URL, port: Int) async throws -> [String: Result] {
        var results: [String: Result] = [:]
        for (index, (name, location)) in backends.enumerated() {
            let data = try BenchData(location, folder: directory.appendingPathComponent("scale-\(index)"))
            print("Seeding \(name) with \(sites) sites…")
            let started = ContinuousClock.now
            let fixture = try await data.writeFixture(port: port + index, client: client) { [sites] in
                try await ScaleFixture.make(on: $0, load: $1, sites: sites)
            }
            let seedSeconds = (ContinuousClock.now - started).seconds
            print("  seeded \(fixture.devices) devices in \(String(format: "%.0f", seedSeconds)) s")

            let server = try ServerProcess(port: port + 10 + index, data: data)
            defer { server.stop() }
            let load = Load(client: client, base: server.base, seconds: seconds, concurrency: 1)
            try await load.waitUntilUp()
            var percentiles: [Read: [Int: Stats]] = [:]
            for read in Read.allCases {
                // A first pass warms the caches, as a server that has been up a while has them.
                _ = try await timed(read, fixture: fixture, load: load, callers: 1, seconds: min(1, seconds))
                for callers in Self.callers {
                    let histogram = try await timed(read, fixture: fixture, load: load, callers: callers, seconds: seconds)
                    percentiles[read, default: [:]][callers] = Stats(
                        p50: Double(histogram.valueAtPercentile(50)) / 1000, p99: Double(histogram.valueAtPercentile(99)) / 1000,
                        max: Double(histogram.max) / 1000, count: histogram.totalCount)
                }
            }
            server.stop()
            results[name] = Result(seedSeconds: seedSeconds, devices: fixture.devices, percentiles: percentiles)
        }
        return results
    }

    /// Each answer's time in microseconds, `callers` in a closed loop.
    private func timed(_ read: Read, fixture: ScaleFixture, load: Load, callers: Int, seconds: Double) async throws -> Histogram<UInt64> {
        let deadline = ContinuousClock.now + .seconds(seconds)
        return try await withThrowingTaskGroup(of: Histogram<UInt64>.self) { group in
            for _ in 0..<callers {
                group.addTask {
                    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
                    while ContinuousClock.now < deadline {
                        let started = ContinuousClock.now
                        try await once(read, fixture: fixture, load: load)
                        let elapsed = ContinuousClock.now - started
                        _ = histogram.record(UInt64(max(0, elapsed.seconds * 1e6)))
                    }
                    return histogram
                }
            }
            var all = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
            for try await part in group { all.add(part) }
            return all
        }
    }

    private func once(_ read: Read, fixture: ScaleFixture, load: Load) async throws {
        let portal = { (token: String) in [("Cookie", "lk_session=\(token); lk_csrf=\(HotReadFixture.csrf)")] }
        switch read {
        case .installerSites: try await load.get("/api/v1/sites", token: fixture.installerToken)
        case .installerSitesLater: try await load.get(fixture.installerFourthPage, token: fixture.installerToken)
        case .installerDevices: try await load.get("/api/v1/sites/\(fixture.installerSite)/devices", token: fixture.installerToken)
        case .installerPortalSites: try await load.get("/sites", headers: portal(fixture.installerToken))
        case .ownerSites: try await load.get("/api/v1/sites", token: fixture.ownerToken)
        case .ownerDevices: try await load.get("/api/v1/sites/\(fixture.ownerSite)/devices", token: fixture.ownerToken)
        case .ownerRequests: try await load.get("/api/v1/password-resets", token: fixture.ownerToken)
        case .ownerNotifications: try await load.get("/api/v1/notifications", token: fixture.ownerToken)
        case .ownerPortalSites: try await load.get("/sites", headers: portal(fixture.ownerToken))
        case .ownerPortalSite: try await load.get("/sites/\(fixture.ownerSite)", headers: portal(fixture.ownerToken))
        case .ownerPortalNotifications: try await load.get("/notifications", headers: portal(fixture.ownerToken))
        case .ownerPortalRequests: try await load.get("/requests", headers: portal(fixture.ownerToken))
        }
    }

    static func report(_ results: [String: Result], backends: [String], sites: Int, seconds: Double) {
        print("\na million devices: answer time per request (HdrHistogram, \(seconds) s per read, 1 caller then 4 at once,"
              + " server in its own process); gate p99 ≤ 50 ms")
        for name in backends {
            guard let result = results[name] else { continue }
            print("\(name): \(result.devices) devices on \(sites) sites, seeded in \(String(format: "%.0f", result.seedSeconds)) s")
        }
        print((["read"] + backends.flatMap { name in callers.flatMap { ["\(name) ×\($0) p50 ms", "\(name) ×\($0) p99 ms"] } })
            .joined(separator: " | "))
        for read in Read.allCases {
            var row = [read.rawValue]
            for name in backends {
                for callers in Self.callers {
                    let value = results[name]?.percentiles[read]?[callers]
                    row += [String(format: "%.2f", value?.p50 ?? 0), String(format: "%.2f", value?.p99 ?? 0)]
                }
            }
            print(row.joined(separator: " | "))
        }
    }
}

/// The large database, written in bulk (multi-row `INSERT`s of 500 rows) by an in-process service that also signs
/// the two measured people up through the API.
struct ScaleFixture: Sendable {
    let ownerToken: String
    let installerToken: String
    /// One of the owner's sites (100 devices) and one of the installer's (10).
    let ownerSite: UUID
    let installerSite: UUID
    /// The installer's sites list from its fourth page on.
    let installerFourthPage: String
    let devices: Int

    static func make(on platform: Platform, load: Load, sites siteCount: Int) async throws -> ScaleFixture {
        guard let sql = platform.database as? any SQLDatabase else { throw Load.Failure(description: "not an SQL database") }
        let tag = UUID().uuidString.prefix(8).lowercased()
        let installerEmail = "scale-installer-\(tag)@example.com"
        let installerSession = try await load.session(email: installerEmail, role: .installer)
        let ownerSession = try await load.session(email: "scale-owner-\(tag)@example.com", role: .owner)
        let (owner, ownerAccount) = (ownerSession.token, ownerSession.account)
        let (installer, installerAccount) = (installerSession.token, installerSession.account)

        // The owner's 20 sites of 100 devices, through the API for the sites (as the owner made them).
        var ownerSites: [UUID] = []
        for index in 0..<20 {
            let site: API.Site = try await load.send(.POST, "/api/v1/sites", token: owner, body: API.CreateSite(name: "Negozio \(index)"))
            ownerSites.append(site.id)
        }
        let start = Date()
        // Filler owners with 10 sites each, each site with 10 devices.
        let fillerSites = siteCount - ownerSites.count
        let fillerOwners = (fillerSites + 9) / 10
        let ownerIds = (0..<fillerOwners).map { _ in UUID() }
        try await insert(sql, "accounts", ["id", "email", "name", "role", "password_hash", "created_at"], count: fillerOwners) { index in
            [ownerIds[index], "filler-\(tag)-\(index)@example.com", "Filler \(index)", "owner", "!", start]
        }
        let siteIds = (0..<fillerSites).map { _ in UUID() }
        try await insert(sql, "sites", ["id", "owner_id", "name", "address", "created_at"], count: fillerSites) { index in
            [siteIds[index], ownerIds[index / 10], "Site \(index)", "Via Roma \(index)", start + Double(index) / 1000]
        }
        let allSites = ownerSites.map { ($0, 100) } + siteIds.map { ($0, 10) }
        var deviceRows: [(String, UUID)] = []
        deviceRows.reserveCapacity(allSites.count * 10 + 2_000)
        for (siteIndex, (siteId, count)) in allSites.enumerated() {
            for device in 0..<count { deviceRows.append(("SC\(tag)-\(siteIndex)-\(device)", siteId)) }
        }
        try await insert(sql, "devices", ["serial", "model", "device_type", "firmware", "site_id", "online", "last_seen_at", "keys_pinned"],
                         count: deviceRows.count) { index in
            [deviceRows[index].0, index % 3 == 0 ? "DS-7608NI-K2" : "DS-2CD2143G2-I", index % 3 == 0 ? "nvr" : "camera",
             index % 3 == 0 ? "V4.62.200" : "V5.7.3", deviceRows[index].1, false, start, false]
        }
        // The installer is authorized on 500 filler sites.
        let authorized = Array(stride(from: 0, to: siteIds.count, by: max(1, siteIds.count / 500)).prefix(500).map { siteIds[$0] })
        try await insert(sql, "site_authorizations", ["id", "site_id", "installer_id", "permissions", "created_at"], count: authorized.count) { index in
            [UUID(), authorized[index], installerAccount.id, "password_reset,view", start]
        }
        // The owner's history: 1,000 completed requests by the installer and 2,000 notifications.
        let requestIds = (0..<1_000).map { _ in UUID() }
        try await insert(sql, "password_reset_requests",
                         ["id", "device_serial", "site_id", "owner_id", "installer_id", "mode", "status", "created_at", "expires_at", "updated_at"],
                         count: requestIds.count) { index in
            let at = start - Double(1_000 - index) * 3600
            return [requestIds[index], deviceRows[index].0, deviceRows[index].1, ownerAccount.id, installerAccount.id, "off_site", "completed",
                    at, at + 86_400, at + 600]
        }
        try await insert(sql, "notifications", ["id", "account_id", "category", "kind", "title", "body", "request_id", "created_at", "read"],
                         count: 2_000) { index in
            let at = start - Double(2_000 - index) * 1800
            return [UUID(), ownerAccount.id, "services", index % 2 == 0 ? "reset_requested" : "reset_completed", "Reset", "A reset",
                    requestIds[index / 2], at, true]
        }
        // Fresh statistics for the planner, as a database that has been running a while has.
        try await sql.raw("ANALYZE").run()

        let first = try await load.client.execute(request(load.base + "/api/v1/sites?limit=100", token: installer), timeout: .seconds(30))
        var next = first.headers.first(name: "Link")
        _ = try await first.body.collect(upTo: 1 << 24)
        for _ in 0..<2 {
            guard let link = next else { break }
            let response = try await load.client.execute(request(load.base + Self.target(link), token: installer), timeout: .seconds(30))
            next = response.headers.first(name: "Link")
            _ = try await response.body.collect(upTo: 1 << 24)
        }
        guard let fourth = next else { throw Load.Failure(description: "the installer's sites have fewer than four pages") }
        return ScaleFixture(ownerToken: owner, installerToken: installer, ownerSite: ownerSites[0], installerSite: authorized[0],
                            installerFourthPage: Self.target(fourth), devices: deviceRows.count)
    }

    private static func request(_ url: String, token: String) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        return request
    }

    /// `<target>; rel="next"` → target.
    private static func target(_ link: String) -> String {
        String(link.dropFirst().prefix { $0 != ">" })
    }

    /// `count` rows, 500 to a statement.
    private static func insert(_ sql: any SQLDatabase, _ table: String, _ columns: [String], count: Int,
                               row: (Int) -> [any Encodable & Sendable]) async throws {
        for batch in stride(from: 0, to: count, by: 500) {
            var query: SQLQueryString = "INSERT INTO \(unsafeRaw: table) (\(unsafeRaw: columns.joined(separator: ", "))) VALUES "
            for index in batch..<min(batch + 500, count) {
                query += (index == batch ? "(" : ", (") + "\(binds: row(index)))"
            }
            try await sql.raw(query).run()
        }
    }
}
