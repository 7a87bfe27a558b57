import ArgumentParser
import AsyncHTTPClient
import Foundation
import LatchkeyCloud
import LatchkeyDevice
import LatchkeyProtocol
import NIOCore
import NIOHTTP1

/// Throughput of the service on SQLite and PostgreSQL, side by side in one run:
/// `GET /healthz`, listing a site's devices, and the create → read → approve cycle of reset requests.
@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "latchkey-bench")

    @Option(help: "PostgreSQL to measure as well (default $DATABASE_URL; none: SQLite only); the run makes a database of its own there and drops it after.")
    var postgresURL: String?
    @Flag(help: "PostgreSQL only (with --postgres-url).") var postgresOnly = false
    @Option(help: "Seconds per measurement.") var seconds: Double = 3
    @Option(help: "Measurements per scenario; the median is reported.") var rounds: Int = 3
    @Option(help: "Requests in flight at once.") var concurrency: Int = 16
    @Option(help: "First port to serve on (loopback).") var port: Int = 18_480
    @Option(help: "The part to run: \(Part.allCases.map(\.rawValue).joined(separator: ", ")).") var only: Part = .all
    @Option(help: "Device channels to hold (channels).") var channels: Int = 15_000
    @Option(help: "Seconds the channels stay idle while measured (channels).") var idleSeconds: Double = 60
    @Option(help: "Seconds between a device's pings (channels; default: the device's own, 60).") var deviceHeartbeat: Double?
    @Option(parsing: .upToNextOption,
            help: "How the devices reach the node (channels), one run each: ws, wss (TLS at the node), proxy (plain ws through nginx).")
    var channelTransport: [ChannelScale.Transport] = [.ws]
    @Option(help: "Sites in the large database (scale); each has 10 devices.") var scaleSites: Int = 100_000
    @Flag(help: "Hot reads and flows also against a server whose tasks run on Swift's own threads (serve --separate-executor).")
    var compareExecutors = false
    @Option(help: "Another build's `latchkey` (say, main before a change), measured beside this one in hot reads, flows and channels.")
    var compareServer: String?

    func run() async throws {
        let interrupts = Children.stopOnInterrupt()
        defer { withExtendedLifetime(interrupts) {} }
        guard let server = postgresURL ?? ProcessInfo.processInfo.environment["DATABASE_URL"], !server.isEmpty else {
            return try await measure(postgres: nil)
        }
        try await BenchPostgres.withDatabase(on: server) { try await measure(postgres: $0) }
    }

    /// Every part asked for, on SQLite and on `postgres` (the run's own database there).
    private func measure(postgres: String?) async throws {
        var backends: [(String, DatabaseLocation)] = []
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("latchkey-bench-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        if !postgresOnly { backends.append(("SQLite", .sqliteFile(path: directory.appendingPathComponent("bench.sqlite").path))) }
        if let postgres { backends.append(("PostgreSQL", .postgres(url: postgres))) }

        var configuration = HTTPClient.Configuration(
            connectionPool: .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency))
        // No tracer: with none bootstrapped, the client still opens a no-op span per request and parses its URL for the
        // span's attributes, 3.5 % of the load's CPU in complete flows, taken from the server it shares the cores with.
        configuration.tracing.tracer = nil
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let servers: [MeasuredServer] = backends.flatMap { name, location in
            let separate = MeasuredServer(name: "\(name), separate threads", location: location, serveArguments: ["--separate-executor"])
            return [MeasuredServer(name: name, location: location)] + (compareExecutors ? [separate] : []) + compared(name, location)
        }
        var hot: [String: [HotRead: Load.CPUMeasure]] = [:]
        if runs(.hotReads) {
            hot = try await HotReads(client: client, seconds: seconds, rounds: rounds, concurrency: concurrency)
                .run(servers: servers, directory: directory, port: port + 30)
        }
        var flows: [String: [CompleteFlows.Path: CompleteFlows.Result]] = [:]
        if runs(.flows) {
            flows = try await CompleteFlows(client: client, seconds: seconds, rounds: rounds, concurrency: concurrency)
                .run(servers: servers, directory: directory, port: port + 60)
        }
        var scale: [String: ScaleRun.Result] = [:]
        if runs(.scale) {
            scale = try await ScaleRun(client: client, seconds: seconds, sites: scaleSites)
                .run(backends: backends, directory: directory, port: port + 80)
        }
        var fleets: [ChannelScale.Result] = []
        let heartbeat = deviceHeartbeat.map { Duration.milliseconds(Int($0 * 1000)) } ?? DeviceRunner.defaultHeartbeat
        for (index, (name, location)) in backends.enumerated() where runs(.channels) {
            let builds = [MeasuredServer(name: name, location: location)] + compared(name, location)
            for (round, (transport, build)) in channelTransport.flatMap({ transport in builds.map { (transport, $0) } }).enumerated() {
                fleets.append(try await ChannelScale(client: client, channels: channels, idleSeconds: idleSeconds, transport: transport,
                                                     heartbeat: heartbeat, executable: build.executable)
                    .run(backend: build.name, location: location, directory: directory, port: port + 90 + index + 200 * round))
            }
        }
        var streams: [(StreamLatency.Case, StreamLatency.Result)] = []
        if runs(.streams) {
            streams = try await StreamLatency(client: client, seconds: seconds * Double(rounds))
                .run(backends: backends, directory: directory, port: port + 100)
        }
        var results: [String: [String: Double]] = [:]
        for (index, (name, location)) in backends.enumerated() where runs(.throughput) {
            print("Measuring \(name)…")
            var configuration = LatchkeyConfiguration.testing(database: location)
            defer { configuration.removeTestingKeyFolder() }
            configuration.port = port + index
            configuration.logLevel = .error
            // The fixture signs up and in a few times, well inside the standard limits: they stay on, as in production.
            configuration.rateLimits = .standard
            let platform = try await buildPlatform(configuration)
            let server = Task { try await platform.application.runService(gracefulShutdownSignals: []) }
            defer { server.cancel() }
            let load = Load(client: client, base: "http://127.0.0.1:\(configuration.port)", seconds: seconds, concurrency: concurrency)
            try await load.waitUntilUp()
            let fixture = try await Fixture.make(on: platform, load: load)
            for scenario in Scenario.allCases {
                var measured: [Double] = []
                for _ in 0..<rounds { measured.append(try await load.measure(scenario, fixture: fixture)) }
                results[scenario.rawValue, default: [:]][name] = measured.sorted()[measured.count / 2]
            }
            server.cancel()
            _ = await server.result
        }
        var floods: [(RateLimitPolicy, SignInFlood.Result)] = []
        for (index, policy) in [RateLimitPolicy.off, .standard].enumerated() where runs(.flood) {
            print("Measuring a sign-in flood with rate limits \(policy)…")
            floods.append((policy, try await SignInFlood(
                client: client, directory: directory, port: port + 10 + index, seconds: seconds * Double(rounds), concurrency: concurrency
            ).run(policy)))
        }
        try await client.shutdown()
        if !hot.isEmpty { HotReads.report(hot, backends: servers.map(\.name)) }
        if !scale.isEmpty { ScaleRun.report(scale, backends: backends.map(\.0), sites: scaleSites, seconds: seconds) }
        for fleet in fleets { ChannelScale.report(fleet, idleSeconds: idleSeconds) }
        if !flows.isEmpty { CompleteFlows.report(flows, backends: servers.map(\.name), concurrency: concurrency) }
        if !streams.isEmpty { StreamLatency.report(streams, seconds: seconds * Double(rounds)) }
        if !results.isEmpty { report(results, backends: backends.map(\.0)) }
        if !floods.isEmpty { report(floods) }
    }

    /// The other build (`--compare-server`) on a backend, if one was given.
    func compared(_ name: String, _ location: DatabaseLocation) -> [MeasuredServer] {
        compareServer.map { [MeasuredServer(name: "\(name), \($0)", location: location, executable: URL(fileURLWithPath: $0))] } ?? []
    }

    /// One server the hot reads, flows and channels measure: a backend, and how `latchkey serve` is started on it.
    struct MeasuredServer {
        var name: String
        var location: DatabaseLocation
        var serveArguments: [String] = []
        /// nil: the `latchkey` built beside this benchmark.
        var executable: URL?

        /// The servers, each with its place in `servers`, in one group per backend, in the order the backends come: the
        /// servers of a group are measured in turn, round by round.
        static func byBackend(_ servers: [MeasuredServer]) -> [[(index: Int, server: MeasuredServer)]] {
            var groups: [[(index: Int, server: MeasuredServer)]] = []
            for (index, server) in servers.enumerated() {
                if let group = groups.firstIndex(where: { $0[0].server.location == server.location }) {
                    groups[group].append((index, server))
                } else {
                    groups.append([(index, server)])
                }
            }
            return groups
        }
    }

    /// What `--only` chooses among.
    enum Part: String, CaseIterable, ExpressibleByArgument {
        case all, hotReads = "hot-reads", flows, scale, channels, streams, throughput, flood
    }

    func runs(_ part: Part) -> Bool { only == .all || only == part }

    func report(_ results: [String: [String: Double]], backends names: [String]) {
        print("\nrate limits: standard (sign-in 20/min per address, 10/15 min per account and address; the fixture stays under them)")
        print("requests/s, median of \(rounds) × \(seconds) s, \(concurrency) in flight, debug=\(Self.isDebug)")
        print(["scenario"].plus(names).plus(names.count == 2 ? ["PostgreSQL / SQLite"] : []).joined(separator: " | "))
        for scenario in Scenario.allCases {
            let row = names.map { String(format: "%.0f", results[scenario.rawValue]?[$0] ?? 0) }
            var ratio: [String] = []
            if names.count == 2, let sqlite = results[scenario.rawValue]?[names[0]], let postgres = results[scenario.rawValue]?[names[1]], sqlite > 0 {
                ratio = [String(format: "%.2f", postgres / sqlite)]
            }
            print([scenario.rawValue].plus(row).plus(ratio).joined(separator: " | "))
        }
    }

    func report(_ floods: [(RateLimitPolicy, SignInFlood.Result)]) {
        print("\nsign-in flood: wrong passwords for one account from one address, bcrypt cost 12, SQLite, \(concurrency) in flight, "
              + "\(seconds * Double(rounds)) s; CPU is this process's (service and load generator together)")
        print("rate limits | answers/s | 401 (password checked) | 429 (refused before bcrypt) | CPU ms per answer | cores busy")
        for (policy, result) in floods {
            print([policy.description, String(format: "%.1f", result.answersPerSecond), String(result.checked), String(result.refused),
                   String(format: "%.3f", result.cpuMillisecondsPerAnswer), String(format: "%.2f", result.coresBusy)].joined(separator: " | "))
        }
    }

    static var isDebug: Bool {
        #if DEBUG
        true
        #else
        false
        #endif
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

extension Array {
    fileprivate func plus(_ other: [Element]) -> [Element] { self + other }
}

enum Scenario: String, CaseIterable {
    case health = "GET /healthz"
    case listDevices = "GET /sites/{id}/devices (20 devices)"
    case resetCycle = "reset create → read → approve (3 requests)"
}

/// Accounts, a site with 20 devices to list, and a site with a fresh device for every reset cycle.
struct Fixture: Sendable {
    let ownerToken: String
    let installerToken: String
    let listedSiteId: UUID
    let serials: Serials

    /// Hands out each reset device once: an approved request stays open, so a device serves one cycle.
    final class Serials: @unchecked Sendable {
        private let lock = NSLock()
        private var next = 0
        private let all: [String]
        init(_ all: [String]) { self.all = all }
        func take() -> String? {
            lock.withLock {
                guard next < all.count else { return nil }
                defer { next += 1 }
                return all[next]
            }
        }
    }

    static func make(on platform: Platform, load: Load) async throws -> Fixture {
        let tag = UUID().uuidString.prefix(8).lowercased()
        let owner = try await load.signUp(email: "owner-\(tag)@example.com", role: .owner)
        let installer = try await load.signUp(email: "installer-\(tag)@example.com", role: .installer)
        let listed: API.Site = try await load.send(.POST, "/api/v1/sites", token: owner, body: API.CreateSite(name: "Listed"))
        let resets: API.Site = try await load.send(.POST, "/api/v1/sites", token: owner, body: API.CreateSite(name: "Resets"))
        let grant = API.GrantAuthorization(installerEmail: "installer-\(tag)@example.com", permissions: [.view, .passwordReset])
        let _: API.SiteAuthorization = try await load.send(.POST, "/api/v1/sites/\(resets.id)/authorizations", token: owner, body: grant)
        let serials = (0..<40_000).map { "BENCH-\(tag)-\($0)" }
        try await platform.store.transaction { session in
            for index in 0..<20 {
                try await session.devices.save(Device(serial: "LIST-\(tag)-\(index)", model: "DS-2CD2143G2-I", deviceType: .camera,
                                                      firmware: "V5.7.3", siteId: listed.id, online: true))
            }
        }
        // Devices for the cycles, written in batches so setup stays short.
        for batch in stride(from: 0, to: serials.count, by: 2000) {
            let slice = Array(serials[batch..<min(batch + 2000, serials.count)])
            try await platform.store.transaction { session in
                for serial in slice {
                    try await session.devices.save(Device(serial: serial, model: "DS-7608NI-K2", deviceType: .nvr,
                                                          firmware: "V4.62.200", siteId: resets.id, online: true))
                }
            }
        }
        return Fixture(ownerToken: owner, installerToken: installer, listedSiteId: listed.id, serials: Serials(serials))
    }
}

/// Closed-loop load on loopback: `concurrency` workers, each sending its next request when the last one answered.
struct Load: Sendable {
    let client: HTTPClient
    let base: String
    let seconds: Double
    let concurrency: Int

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    func waitUntilUp() async throws {
        for _ in 0..<100 {
            if let response = try? await client.execute(HTTPClientRequest(url: base + "/healthz"), timeout: .seconds(1)),
               response.status == .ok {
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw Failure(description: "the service did not come up at \(base)")
    }

    func signUp(email: String, role: AccountRole) async throws -> String {
        try await session(email: email, role: role).token
    }

    /// A new account, signed in.
    func session(email: String, role: AccountRole) async throws -> API.Session {
        let _: API.Account = try await send(.POST, "/api/v1/accounts", body: API.SignUp(email: email, password: "bench password 1", name: "Bench", role: role))
        return try await send(.POST, "/api/v1/sessions", body: API.SignIn(email: email, password: "bench password 1"))
    }

    func send<Answer: Decodable>(_ method: HTTPMethod, _ path: String, token: String? = nil, body: (some Encodable)? = Optional<String>.none) async throws -> Answer {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: try WireCoding.makeEncoder().encode(body)))
        }
        let response = try await client.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 16 * 1024 * 1024)
        guard (200..<300).contains(response.status.code) else {
            throw Failure(description: "\(method) \(path) answered \(response.status): \(String(buffer: bytes))")
        }
        return try WireCoding.makeDecoder().decode(Answer.self, from: Data(buffer: bytes))
    }

    func get(_ path: String, token: String?) async throws {
        try await get(path, headers: token.map { [("Authorization", "Bearer \($0)")] } ?? [])
    }

    func get(_ path: String, headers: [(String, String)]) async throws {
        var request = HTTPClientRequest(url: base + path)
        request.headers.add(contentsOf: headers)
        let response = try await client.execute(request, timeout: .seconds(30))
        _ = try await response.body.collect(upTo: 16 * 1024 * 1024)
        guard response.status == .ok else { throw Failure(description: "GET \(path) answered \(response.status)") }
    }

    /// Requests per second over `seconds`.
    func measure(_ scenario: Scenario, fixture: Fixture) async throws -> Double {
        let (requests, wall) = try await closedLoop { try await once(scenario, fixture: fixture) }
        return Double(requests) / wall
    }

    /// `concurrency` workers repeating `unit` (which answers how many requests it made) for `seconds`: the requests
    /// made and the wall-clock seconds it took.
    func closedLoop(_ unit: @escaping @Sendable () async throws -> Int) async throws -> (requests: Int, seconds: Double) {
        let started = ContinuousClock.now
        let deadline = started + .seconds(seconds)
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var requests = 0
                    while ContinuousClock.now < deadline { requests += try await unit() }
                    return requests
                }
            }
            return try await group.reduce(0, +)
        }
        return (total, (ContinuousClock.now - started).seconds)
    }

    /// One unit of the scenario; returns how many HTTP requests it made.
    private func once(_ scenario: Scenario, fixture: Fixture) async throws -> Int {
        switch scenario {
        case .health:
            try await get("/healthz", token: nil)
            return 1
        case .listDevices:
            try await get("/api/v1/sites/\(fixture.listedSiteId)/devices", token: fixture.ownerToken)
            return 1
        case .resetCycle:
            guard let serial = fixture.serials.take() else { throw Failure(description: "out of devices: raise the fixture size") }
            let created: API.PasswordReset = try await send(.POST, "/api/v1/devices/\(serial)/password-resets", token: fixture.installerToken,
                                                            body: API.RequestPasswordReset(mode: .offSite))
            try await get("/api/v1/password-resets/\(created.id)", token: fixture.ownerToken)
            let _: API.PasswordReset = try await send(.POST, "/api/v1/password-resets/\(created.id)/approve", token: fixture.ownerToken,
                                                      body: API.ApprovePasswordReset(sealedPassword: Self.sealed))
            return 3
        }
    }

    /// The shape of an HPKE seal; the benchmark measures the platform, which never opens it.
    static let sealed = PasswordSeal.prefix + Base64URL.encode(Data((0..<80).map { UInt8($0) }))
}

extension Array {
    /// The servers of a backend in the order they are measured in round `round`: ABBA, so that each is measured as
    /// often first as last while the machine's speed drifts.
    func inTurn(round: Int) -> [Element] {
        round.isMultiple(of: 2) ? self : reversed()
    }
}
