import AsyncHTTPClient
import Foundation
import LatchkeyCloud
import LatchkeyProtocol
import NIOCore

/// Wrong-password sign-ins from one address as fast as the clients can send them, against a service with production
/// bcrypt: with the limits off every attempt costs a bcrypt (as before limits existed); with the standard limits the
/// flood is refused by a counter before any hashing.
struct SignInFlood {
    let client: HTTPClient
    let directory: URL
    let port: Int
    let seconds: Double
    let concurrency: Int

    struct Result {
        var answersPerSecond: Double
        var checked: Int
        var refused: Int
        var cpuMillisecondsPerAnswer: Double
        var coresBusy: Double
    }

    func run(_ policy: RateLimitPolicy) async throws -> Result {
        var configuration = LatchkeyConfiguration.testing(
            database: .sqliteFile(path: directory.appendingPathComponent("flood-\(port).sqlite").path))
        defer { configuration.removeTestingKeyFolder() }
        configuration.port = port
        configuration.logLevel = .error
        configuration.bcryptCost = 12
        configuration.rateLimits = policy
        let platform = try await buildPlatform(configuration)
        let server = Task { try await platform.application.runService(gracefulShutdownSignals: []) }
        defer { server.cancel() }
        let load = Load(client: client, base: "http://127.0.0.1:\(port)", seconds: seconds, concurrency: concurrency)
        try await load.waitUntilUp()
        _ = try await load.signUp(email: "victim@example.com", role: .owner)
        let body = ByteBuffer(data: try WireCoding.makeEncoder().encode(API.SignIn(email: "victim@example.com", password: "wrong guess 1")))

        let cpuBefore = ServerProcess.cpuSeconds(of: getpid())
        let started = ContinuousClock.now
        let deadline = started + .seconds(seconds)
        let counts = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var (checked, refused) = (0, 0)
                    while ContinuousClock.now < deadline {
                        var request = HTTPClientRequest(url: load.base + "/api/v1/sessions")
                        request.method = .POST
                        request.headers.add(name: "Content-Type", value: "application/json")
                        request.body = .bytes(body)
                        let response = try await client.execute(request, timeout: .seconds(60))
                        _ = try await response.body.collect(upTo: 1 << 16)
                        if response.status.code == 429 { refused += 1 } else { checked += 1 }
                    }
                    return (checked, refused)
                }
            }
            return try await group.reduce((0, 0)) { ($0.0 + $1.0, $0.1 + $1.1) }
        }
        let wall = (ContinuousClock.now - started).seconds
        let cpu = ServerProcess.cpuSeconds(of: getpid()) - cpuBefore
        server.cancel()
        _ = await server.result
        let answers = counts.0 + counts.1
        return Result(answersPerSecond: Double(answers) / wall, checked: counts.0, refused: counts.1,
                      cpuMillisecondsPerAnswer: cpu * 1000 / Double(max(answers, 1)), coresBusy: cpu / wall)
    }
}
