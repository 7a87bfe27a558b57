import AsyncHTTPClient
import Foundation
import LatchkeyCloud
import LatchkeyProtocol
import NIOCore
import NIOPosix
import Synchronization

/// Live notifications: how long a new notification takes from its commit to the write on every open stream, read from
/// the server's own histogram (`latchkey_notification_delivery_seconds` in `GET /metrics`, HdrHistogram). One stream,
/// then 1,000 (250 owners with 4 each: a phone, a tablet, two browser tabs), while installers request and cancel
/// resets at a steady pace; on PostgreSQL also with the streams on one node and the writes on another.
struct StreamLatency {
    let client: HTTPClient
    let seconds: Double

    struct Case: Hashable, CustomStringConvertible {
        var backend: String
        var owners: Int
        var streamsPerOwner: Int
        var nodes: Int
        var streams: Int { owners * streamsPerOwner }
        var description: String { "\(backend), \(streams) stream\(streams == 1 ? "" : "s"), \(nodes) node\(nodes == 1 ? "" : "s")" }
    }

    struct Result {
        /// Milliseconds, from the server's histogram.
        var p50, p90, p99, p999, max: Double
        var writes: Int
        var heard: Int
        var expected: Int
        var notificationsPerSecond: Double
    }

    /// Request → cancel cycles per second, in all: each tells the device's owner twice.
    static let cyclesPerSecond = 100.0
    static let workers = 4

    func run(backends: [(String, DatabaseLocation)], directory: URL, port: Int) async throws -> [(Case, Result)] {
        var results: [(Case, Result)] = []
        var port = port
        for (name, location) in backends {
            var cases = [Case(backend: name, owners: 1, streamsPerOwner: 1, nodes: 1), Case(backend: name, owners: 250, streamsPerOwner: 4, nodes: 1)]
            if case .postgres = location {
                cases += [Case(backend: name, owners: 1, streamsPerOwner: 1, nodes: 2), Case(backend: name, owners: 250, streamsPerOwner: 4, nodes: 2)]
            }
            for measured in cases {
                print("Measuring live notifications: \(measured)…")
                results.append((measured, try await run(measured, location: location, directory: directory, port: port)))
                port += 4
            }
        }
        return results
    }

    private func run(_ measured: Case, location: DatabaseLocation, directory: URL, port: Int) async throws -> Result {
        let data = try BenchData(location, folder: directory.appendingPathComponent("streams-\(port)"))
        let fixture = try await data.writeFixture(port: port, client: client) {
            try await StreamFixture.make(on: $0, load: $1, owners: measured.owners, devices: Self.workers)
        }
        let servers = try (0..<measured.nodes).map { try ServerProcess(port: port + 1 + $0, data: data) }
        defer { servers.forEach { $0.stop() } }
        // Writes go to the first node, the streams listen on the last.
        let writer = Load(client: client, base: servers[0].base, seconds: seconds, concurrency: Self.workers)
        let listener = Load(client: client, base: servers[servers.count - 1].base, seconds: seconds, concurrency: 1)
        try await writer.waitUntilUp()
        try await listener.waitUntilUp()

        let streams = try await StreamListeners.open(
            tokens: fixture.owners.flatMap { Array(repeating: $0.token, count: measured.streamsPerOwner) }, port: port + measured.nodes)
        defer { streams.close() }
        // A relayed notification needs the other node listening already: it is, once a first one arrives.
        if measured.nodes > 1 { try await warmRelay(fixture, writer: writer, streams: streams) }
        let warm = streams.heard

        let deadline = ContinuousClock.now + .seconds(seconds)
        let interval = Duration.seconds(Double(Self.workers) / Self.cyclesPerSecond)
        let cycles = try await withThrowingTaskGroup(of: Int.self) { group in
            for worker in 0..<Self.workers {
                group.addTask {
                    var cycles = 0
                    var next = ContinuousClock.now
                    // Each worker has its own devices (one open request per device).
                    let mine = fixture.devices.indices.filter { $0 % Self.workers == worker }.map { fixture.devices[$0] }
                    while ContinuousClock.now < deadline {
                        let (serial, _) = mine[cycles % mine.count]
                        let created: API.PasswordReset = try await writer.send(
                            .POST, "/api/v1/devices/\(serial)/password-resets", token: fixture.installerToken,
                            body: API.RequestPasswordReset(mode: .offSite))
                        let _: API.PasswordReset = try await writer.send(.POST, "/api/v1/password-resets/\(created.id)/cancel",
                                                                         token: fixture.installerToken)
                        cycles += 1
                        next += interval
                        try await Task.sleep(until: next)
                    }
                    return cycles
                }
            }
            return try await group.reduce(0, +)
        }
        // Each cycle tells the device's owner twice, on each of the owner's streams.
        let expected = warm + cycles * 2 * measured.streamsPerOwner
        for _ in 0..<100 where streams.heard < expected { try await Task.sleep(for: .milliseconds(50)) }
        let summary = try await listener.deliverySummary()
        return Result(p50: summary["0.5"] ?? 0, p90: summary["0.9"] ?? 0, p99: summary["0.99"] ?? 0, p999: summary["0.999"] ?? 0,
                      max: summary["1.0"] ?? 0, writes: Int(summary["count"] ?? 0), heard: streams.heard, expected: expected,
                      notificationsPerSecond: Double(cycles * 2) / seconds)
    }

    /// Until the listening node hears the writing node (its `LISTEN` is up).
    private func warmRelay(_ fixture: StreamFixture, writer: Load, streams: StreamListeners) async throws {
        let (serial, _) = fixture.devices[0]
        for _ in 0..<50 where streams.heard == 0 {
            let created: API.PasswordReset = try await writer.send(
                .POST, "/api/v1/devices/\(serial)/password-resets", token: fixture.installerToken, body: API.RequestPasswordReset(mode: .offSite))
            let _: API.PasswordReset = try await writer.send(.POST, "/api/v1/password-resets/\(created.id)/cancel", token: fixture.installerToken)
            try await Task.sleep(for: .milliseconds(200))
        }
        try await Task.sleep(for: .milliseconds(500))
    }

    static func report(_ results: [(Case, Result)], seconds: Double) {
        print("\nlive notifications: commit → write on each stream, the server's HdrHistogram (latchkey_notification_delivery_seconds);"
              + " \(Int(cyclesPerSecond)) request → cancel cycles/s for \(seconds) s, gate p99 ≤ 25 ms")
        print("case | notifications/s | stream writes | heard / expected | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms")
        for (measured, result) in results {
            print([measured.description, String(format: "%.0f", result.notificationsPerSecond), String(result.writes),
                   "\(result.heard) / \(result.expected)"]
                .joined(separator: " | ") + " | "
                + [result.p50, result.p90, result.p99, result.p999, result.max].map { String(format: "%.2f", $0) }.joined(separator: " | "))
        }
    }
}

/// Owners (each with a site of its own), their devices on a few sites, and one installer authorized on all of them;
/// written by an in-process service (test bcrypt cost, limits off) before `latchkey serve` opens the same database.
struct StreamFixture: Sendable {
    struct Owner: Sendable {
        let token: String
    }

    let owners: [Owner]
    let installerToken: String
    /// Serial and owner index.
    let devices: [(String, Int)]

    static func make(on platform: Platform, load: Load, owners count: Int, devices deviceCount: Int) async throws -> StreamFixture {
        let tag = UUID().uuidString.prefix(8).lowercased()
        let installerEmail = "stream-installer-\(tag)@example.com"
        let installer = try await load.signUp(email: installerEmail, role: .installer)
        var owners: [Owner] = []
        var siteIds: [UUID] = []
        for index in 0..<count {
            let token = try await load.signUp(email: "stream-owner-\(index)-\(tag)@example.com", role: .owner)
            let site: API.Site = try await load.send(.POST, "/api/v1/sites", token: token, body: API.CreateSite(name: "Site \(index)"))
            let grant = API.GrantAuthorization(installerEmail: installerEmail, permissions: [.view, .passwordReset])
            let _: API.SiteAuthorization = try await load.send(.POST, "/api/v1/sites/\(site.id)/authorizations", token: token, body: grant)
            owners.append(Owner(token: token))
            siteIds.append(site.id)
        }
        // One device per owner, or several on the one owner's site: the workers each need their own.
        let devices = (0..<max(count, deviceCount)).map { ("STREAM-\(tag)-\($0)", $0 % count) }
        try await platform.store.transaction { [siteIds] session in
            for (serial, owner) in devices {
                try await session.devices.save(Device(serial: serial, model: "DS-7608NI-K2", deviceType: .nvr, firmware: "V4.62.200",
                                                      siteId: siteIds[owner], online: true))
            }
        }
        return StreamFixture(owners: owners, installerToken: installer, devices: devices)
    }
}

/// Open `GET /api/v1/notifications/stream` connections, counting the notifications heard. Plain NIO so that each can
/// come from its own loopback address: the service lets one address hold 100 streams, as a NAT of many people would.
final class StreamListeners: Sendable {
    private let channels: [any Channel]
    private let counter: Counter

    final class Counter: Sendable {
        let value = Mutex(0)
    }

    private init(channels: [any Channel], counter: Counter) {
        self.channels = channels
        self.counter = counter
    }

    var heard: Int { counter.value.withLock { $0 } }

    static func open(tokens: [String], port: Int) async throws -> StreamListeners {
        let counter = Counter()
        let (connected, connectedSignal) = AsyncStream.makeStream(of: Void.self)
        var channels: [any Channel] = []
        for (index, token) in tokens.enumerated() {
            let source = try SocketAddress(ipAddress: "127.0.1.\(1 + index / 100)", port: 0)
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(to: source)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(EventCounter(counter: counter, connected: connectedSignal))
                    }
                }
                .connect(host: "127.0.0.1", port: port).get()
            let head = "GET /api/v1/notifications/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\nAccept: text/event-stream\r\n\r\n"
            try await channel.writeAndFlush(ByteBuffer(string: head))
            channels.append(channel)
        }
        var opened = 0
        for await _ in connected {
            opened += 1
            if opened == tokens.count { break }
        }
        return StreamListeners(channels: channels, counter: counter)
    }

    func close() {
        for channel in channels { channel.close(promise: nil) }
    }

    /// Counts `event: notification` in the raw bytes (the chunked framing around them does not matter), keeping the
    /// end of each read in case an event is split between two.
    private final class EventCounter: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        private static let marker = "event: notification"
        let counter: Counter
        let connected: AsyncStream<Void>.Continuation
        private var carry = ""
        private var opened = false

        init(counter: Counter, connected: AsyncStream<Void>.Continuation) {
            self.counter = counter
            self.connected = connected
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let text = carry + String(buffer: unwrapInboundIn(data))
            if !opened, text.contains(": connected") {
                opened = true
                connected.yield()
            }
            let found = text.components(separatedBy: Self.marker).count - 1
            if found > 0 { counter.value.withLock { $0 += found } }
            carry = String(text.suffix(Self.marker.count - 1))
        }
    }
}

extension Load {
    /// The delivery summary from `GET /metrics`: milliseconds by quantile, and `count`.
    func deliverySummary() async throws -> [String: Double] {
        let name = "latchkey_notification_delivery_seconds"
        let metrics = try await metrics()
        var summary = ["count": metrics[name + "_count"] ?? 0]
        for quantile in ["0.5", "0.9", "0.99", "0.999", "1.0"] {
            summary[quantile] = (metrics[name + "{quantile=\"\(quantile)\"}"] ?? 0) * 1000
        }
        return summary
    }
}
