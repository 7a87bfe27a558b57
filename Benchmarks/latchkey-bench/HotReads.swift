import AsyncHTTPClient
import Foundation
import LatchkeyCloud
import LatchkeyProtocol
import NIOCore
import NIOHTTP1

/// Authenticated reads that every screen makes, measured as the server's CPU per request against `GET /healthz`'s.
enum HotRead: String, CaseIterable {
    case health = "GET /healthz"
    case listDevices = "GET /api/v1/sites/{id}/devices (installer, 3 devices)"
    case readRequest = "GET /api/v1/password-resets/{id} (installer)"
    case notifications = "GET /api/v1/notifications (owner)"
    case sitePage = "portal GET /sites/{id} (owner)"
}

struct HotReadFixture: Sendable {
    static let csrf = String(repeating: "c", count: 43)
    let ownerToken: String
    let installerToken: String
    let siteId: UUID
    let requestId: UUID

    /// An owner, an installer authorized on a site of three devices, and one open request (the owner's notification).
    static func make(on platform: Platform, load: Load) async throws -> HotReadFixture {
        let tag = UUID().uuidString.prefix(8).lowercased()
        let owner = try await load.signUp(email: "hot-owner-\(tag)@example.com", role: .owner)
        let installer = try await load.signUp(email: "hot-installer-\(tag)@example.com", role: .installer)
        let site: API.Site = try await load.send(.POST, "/api/v1/sites", token: owner, body: API.CreateSite(name: "Bar Centrale"))
        let grant = API.GrantAuthorization(installerEmail: "hot-installer-\(tag)@example.com", permissions: [.view, .passwordReset])
        let _: API.SiteAuthorization = try await load.send(.POST, "/api/v1/sites/\(site.id)/authorizations", token: owner, body: grant)
        try await platform.store.transaction { session in
            for (index, model) in ["DS-7608NI-K2", "DS-2CD2143G2-I", "DS-KV6113-WPE1"].enumerated() {
                try await session.devices.save(Device(serial: "HOT-\(tag)-\(index)", model: model, deviceType: index == 0 ? .nvr : .camera,
                                                      firmware: index == 0 ? "V4.62.200" : "V5.7.3", siteId: site.id, online: true))
            }
        }
        let request: API.PasswordReset = try await load.send(.POST, "/api/v1/devices/HOT-\(tag)-0/password-resets", token: installer,
                                                             body: API.RequestPasswordReset(mode: .offSite))
        return HotReadFixture(ownerToken: owner, installerToken: installer, siteId: site.id, requestId: request.id)
    }
}

extension Load {
    struct CPUMeasure {
        var requestsPerSecond: Double
        var serverMicrosecondsPerRequest: Double
        /// This read's CPU over the plain route's, measured in the same round.
        var timesHealth: Double = 1
    }

    /// Requests per second and the server's CPU per request over `seconds`.
    func measure(_ read: HotRead, fixture: HotReadFixture, server: ServerProcess) async throws -> CPUMeasure {
        let cpuBefore = server.cpuSeconds
        let (requests, wall) = try await closedLoop {
            try await once(read, fixture: fixture)
            return 1
        }
        let cpu = server.cpuSeconds - cpuBefore
        return CPUMeasure(requestsPerSecond: Double(requests) / wall, serverMicrosecondsPerRequest: cpu * 1e6 / Double(max(requests, 1)))
    }

    private func once(_ read: HotRead, fixture: HotReadFixture) async throws {
        switch read {
        case .health: try await get("/healthz", token: nil)
        case .listDevices: try await get("/api/v1/sites/\(fixture.siteId)/devices", token: fixture.installerToken)
        case .readRequest: try await get("/api/v1/password-resets/\(fixture.requestId)", token: fixture.installerToken)
        case .notifications: try await get("/api/v1/notifications", token: fixture.ownerToken)
        // As a browser after its first page: the session and the CSRF cookie it was given.
        case .sitePage:
            try await get("/sites/\(fixture.siteId)", headers: [("Cookie", "lk_session=\(fixture.ownerToken); lk_csrf=\(HotReadFixture.csrf)")])
        }
    }
}

/// The hot reads on each backend: a fixture written by an in-process service, then `latchkey serve` started on the
/// same database in its own process and measured.
struct HotReads {
    let client: HTTPClient
    let seconds: Double
    let rounds: Int
    let concurrency: Int

    /// Per server, per read: the median round by its ratio to the plain route. The servers of one backend (two builds,
    /// say) are all started first and measured in turn, round by round, in ABBA order, as complete flows are.
    func run(servers: [Bench.MeasuredServer], directory: URL, port: Int) async throws -> [String: [HotRead: Load.CPUMeasure]] {
        var results: [String: [HotRead: Load.CPUMeasure]] = [:]
        for group in Bench.MeasuredServer.byBackend(servers) {
            var targets: [(name: String, server: ServerProcess, load: Load, fixture: HotReadFixture)] = []
            defer { targets.forEach { $0.server.stop() } }
            for (index, target) in group {
                print("Starting \(target.name) for hot reads (server in its own process)…")
                let data = try BenchData(target.location, folder: directory.appendingPathComponent("hot-\(index)"))
                let fixture = try await data.writeFixture(port: port + index, client: client, HotReadFixture.make)
                let server = try ServerProcess(
                    port: port + 20 + index, data: data, arguments: target.serveArguments, executable: target.executable)
                let load = Load(client: client, base: server.base, seconds: seconds, concurrency: concurrency)
                targets.append((target.name, server, load, fixture))
                try await load.waitUntilUp()
            }
            // Rounds take every read in turn, and each read is set against the plain route of its own round: this
            // machine's speed drifts over minutes, which would otherwise skew reads measured early against late.
            var measured: [String: [HotRead: [Load.CPUMeasure]]] = [:]
            for round in 0..<rounds {
                for target in targets.inTurn(round: round) {
                    var reads: [HotRead: Load.CPUMeasure] = [:]
                    for read in HotRead.allCases {
                        reads[read] = try await target.load.measure(read, fixture: target.fixture, server: target.server)
                    }
                    let health = reads[.health]?.serverMicrosecondsPerRequest ?? 0
                    for (read, var measure) in reads {
                        measure.timesHealth = health > 0 ? measure.serverMicrosecondsPerRequest / health : 0
                        measured[target.name, default: [:]][read, default: []].append(measure)
                    }
                }
            }
            for (name, reads) in measured {
                for (read, rounds) in reads {
                    results[name, default: [:]][read] = rounds.sorted { $0.timesHealth < $1.timesHealth }[rounds.count / 2]
                }
            }
        }
        return results
    }

    static func report(_ results: [String: [HotRead: Load.CPUMeasure]], backends: [String]) {
        print("\nhot reads: server CPU per request (latchkey serve in its own process, /proc/<pid>/stat), gate ≤ 2× GET /healthz; reads and servers interleaved round by round (ABBA), the median round by its ratio to /healthz in that round")
        print((["read"] + backends.flatMap { ["\($0) µs CPU/req", "\($0) × healthz", "\($0) req/s"] }).joined(separator: " | "))
        for read in HotRead.allCases {
            var row = [read.rawValue]
            for name in backends {
                let measure = results[name]?[read]
                row += [String(format: "%.0f", measure?.serverMicrosecondsPerRequest ?? 0),
                        measure.map { String(format: "%.2f", $0.timesHealth) } ?? "-",
                        String(format: "%.0f", measure?.requestsPerSecond ?? 0)]
            }
            print(row.joined(separator: " | "))
        }
    }
}
