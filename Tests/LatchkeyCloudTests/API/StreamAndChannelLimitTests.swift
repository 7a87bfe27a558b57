import Foundation
@testable import LatchkeyCloud
import LatchkeyProtocol
import NIOCore
import Synchronization
import Testing

/// What stays open for long — live notification streams and device channels — ends with its session and is capped
/// per account and per source address, driven over real sockets.
@Suite("Streams and channels", .timeLimit(.minutes(2)))
struct StreamAndChannelLimitTests {
    static func openStream(_ app: TestPlatform, token: String? = nil, cookie: String? = nil, path: String = "/api/v1/notifications/stream")
        async throws -> RawConnection
    {
        let connection = try await RawConnection.open(port: try #require(app.client.port))
        var head = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if let token { head += "Authorization: Bearer \(token)\r\n" }
        if let cookie { head += "Cookie: \(cookie)\r\n" }
        try await connection.send(head + "\r\n")
        return connection
    }

    @Test func theLiveStreamEndsWhenItsSessionSignsOut() async throws {
        try await TestPlatform.run(.live) { app in
            let scene = try await app.resetScene()
            let api = try await Self.openStream(app, token: scene.owner.token)
            #expect(try await api.read(until: ": connected", limit: .seconds(5)).contains("200 OK"))
            let portal = try await Self.openStream(app, cookie: "lk_session=\(scene.installer.token)", path: "/events")
            #expect(try await portal.read(until: ": connected", limit: .seconds(5)).contains("200 OK"))

            // The answer ends (its last chunk) as soon as the session does.
            let lastChunk = "0\r\n\r\n"
            try await app.call(.delete, "/api/v1/sessions", token: scene.owner.token)
            let afterSignOut = try await api.read(until: lastChunk, limit: .seconds(3))
            #expect(afterSignOut.contains(lastChunk), "the API stream outlived its session: \(afterSignOut.debugDescription)")

            let csrf = String(repeating: "c", count: 43)
            let signOut = try await app.client.execute(
                uri: "/signout", method: .post,
                headers: [.contentType: "application/x-www-form-urlencoded", .cookie: "lk_session=\(scene.installer.token); lk_csrf=\(csrf)"],
                body: ByteBuffer(string: "csrf=\(csrf)")) { $0 }
            #expect(signOut.status == .seeOther)
            #expect(try await portal.read(until: lastChunk, limit: .seconds(3)).contains(lastChunk), "the portal's stream outlived its session")
        }
    }

    @Test func streamsAreCappedPerAccount() async throws {
        try await TestPlatform.run(.live, configure: {
            $0.connectionLimits.streamsPerAccount = 2
            // A client that vanished is noticed at the next keep-alive write.
            $0.keepAliveInterval = .milliseconds(200)
        }) { app in
            let scene = try await app.resetScene()
            var open: [RawConnection] = []
            for _ in 0..<2 {
                let stream = try await Self.openStream(app, token: scene.owner.token)
                #expect(try await stream.read(until: ": connected", limit: .seconds(5)).contains("200 OK"))
                open.append(stream)
            }
            let third = try await app.call(.get, "/api/v1/notifications/stream", token: scene.owner.token)
            #expect(third.status == .tooManyRequests)
            #expect(third.errorCode == .rateLimited)
            // Another account is not held back by the first one's streams.
            let other = try await Self.openStream(app, token: scene.installer.token)
            #expect(try await other.read(until: ": connected", limit: .seconds(5)).contains("200 OK"))
            // Closing one gives its place back, by the next keep-alive at the latest.
            _ = try await open.removeFirst().readUntilClosed(limit: .milliseconds(10))
            try await Task.sleep(for: .milliseconds(800))
            let again = try await Self.openStream(app, token: scene.owner.token)
            #expect(try await again.read(until: ": connected", limit: .seconds(5)).contains("200 OK"))
        }
    }

    @Test func deviceChannelsAreCappedPerAddress() async throws {
        // The holder stays silent on purpose: a hello timeout longer than any loaded run keeps it holding (at 5 s, a
        // loaded CI run once closed it before the second connection came, which then got a challenge).
        try await TestPlatform.run(.live, configure: {
            $0.connectionLimits.channelsPerAddress = 1
            $0.deviceHelloTimeout = .seconds(120)
        }) { app in
            let port = try #require(app.client.port)
            // The first connection takes the address's only place and holds it (it says nothing yet).
            let first = try await Self.theOnlyPlaceIsHeldAndTheNextRefused(port: port)
            #expect(first.contains("101"), "\(first)")
            // Once the first has gone, the place is free again.
            var third = ""
            for _ in 0..<20 {
                let (connection, answer) = try await Self.openChannel(port: port)
                third = answer
                _ = try await connection.readUntilClosed(limit: .milliseconds(10))
                if answer.contains("challenge") { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(third.contains("challenge"), "\(third)")
        }
    }

    /// A node busy checking identities says so at once to the next device (which redials after its backoff) rather than
    /// queueing it past its hello timeout. With no place at all, a device is told `rate_limited` after its hello and
    /// is not written down.
    @Test func identitiesBeingCheckedAreBoundedAndTheNextIsToldToComeBack() async throws {
        try await TestPlatform.run(.live, configure: {
            $0.connectionLimits.concurrentHandshakes = 0
            $0.connectionLimits.handshakePatience = .milliseconds(200)
        }) { app in
            let log = CapturedLog()
            let device = try await DeviceHarness.start(on: app, waitForConnection: false, logger: log.logger(label: "device"))
            for _ in 0..<100 where !log.text.contains("The platform refused this device") {
                try await Task.sleep(for: .milliseconds(50))
            }
            let refusals = log.text.split(separator: "\n").filter { $0.contains("refused this device") }
            #expect(refusals.first?.hasPrefix("info The platform refused this device") == true, "\(refusals)")
            #expect(refusals.first?.contains("code=rate_limited") == true, "\(refusals)")
            let serial = device.serial
            let written = try await app.platform.store.read { try await $0.devices.find(serial: serial) }
            #expect(written == nil, "a device refused at the gate was written down")
            await device.stop()
        }
    }

    /// One in, the next turned away without running, and the place given back however the first ended.
    @Test func theGateAdmitsUpToItsLimit() async throws {
        let gate = AdmissionGate(limit: 1)
        let first = await HeldPlace(in: gate)
        #expect(await gate.ifAdmitted { "second" } == nil)
        #expect(await first.leave() == "first")
        #expect(await gate.ifAdmitted { "third" } == "third")
        struct Failed: Error {}
        _ = try? await gate.ifAdmitted { throw Failed() }
        #expect(await gate.ifAdmitted { "after a failure" } == "after a failure")
    }

    /// At the ceiling, work waits its turn in arrival order while its patience lasts, and is turned away after it.
    @Test func atTheCeilingWorkWaitsItsTurnForAWhile() async throws {
        let gate = AdmissionGate(limit: 1, patience: .seconds(30))
        let first = await HeldPlace(in: gate)
        final class Admitted: Sendable { let names = Mutex<[String]>([]) }
        let admitted = Admitted()
        let second = Task { await gate.ifAdmitted { admitted.names.withLock { $0.append("second") } } }
        try await Task.sleep(for: .milliseconds(50))
        let third = Task { await gate.ifAdmitted { admitted.names.withLock { $0.append("third") } } }
        let cancelled = Task { await gate.ifAdmitted { admitted.names.withLock { $0.append("cancelled") } } }
        try await Task.sleep(for: .milliseconds(50))
        cancelled.cancel()
        #expect(await cancelled.value == nil)
        #expect(await first.leave() == "first")
        #expect(await second.value != nil)
        #expect(await third.value != nil)
        #expect(admitted.names.withLock { $0 } == ["second", "third"])

        let impatient = AdmissionGate(limit: 0, patience: .milliseconds(100))
        let asked = ContinuousClock.now
        #expect(await impatient.ifAdmitted { "never" } == nil)
        #expect(ContinuousClock.now - asked >= .milliseconds(100))
    }

    /// A queue longer than the gate compacts (1,024 served) loses no one and leaves the gate free.
    @Test func aLongQueueLosesNoOne() async throws {
        let gate = AdmissionGate(limit: 1, patience: .seconds(60))
        let first = await HeldPlace(in: gate)
        let waiters = (1...2_500).map { index in Task { await gate.ifAdmitted { index } } }
        try await Task.sleep(for: .milliseconds(200))
        #expect(await first.leave() == "first")
        var admitted = 0
        for waiter in waiters where await waiter.value != nil { admitted += 1 }
        #expect(admitted == 2_500)
        #expect(await gate.ifAdmitted { "free" } == "free")
    }

    /// Work inside the gate that stays until told to leave.
    struct HeldPlace {
        private let release: AsyncStream<Void>.Continuation
        private let work: Task<String?, Never>

        init(in gate: AdmissionGate) async {
            let (inside, entered) = AsyncStream.makeStream(of: Void.self)
            let (released, release) = AsyncStream.makeStream(of: Void.self)
            work = Task {
                await gate.ifAdmitted {
                    entered.yield()
                    for await _ in released { break }
                    return "first"
                }
            }
            self.release = release
            for await _ in inside { break }
        }

        /// What the work answered once it left (nil had it not been admitted).
        func leave() async -> String? {
            release.yield()
            return await work.value
        }
    }

    /// A connection that was challenged and stays silent holds no place at the gate: the next device is checked and
    /// connected while it is still held. (Measured: when waiting for hellos counted, 1,000 devices switched on at 200 a
    /// second were turned away 2,318 times, and about 90 of them connected 25–30 s late.) No bound on how soon: a
    /// loaded CI run took 2.8 s; before the fix the device stayed out as long as the holder (120 s).
    @Test func aChallengedConnectionThatStaysSilentHoldsNoPlace() async throws {
        try await TestPlatform.run(.live, configure: {
            $0.connectionLimits.concurrentHandshakes = 1
            $0.deviceHelloTimeout = .seconds(120)
            // The holder answers no ping: at the tests' 5 s it would be closed after 10 s and free its place anyway.
            $0.channelPingInterval = .seconds(120)
        }) { app in
            let port = try #require(app.client.port)
            let (holder, first) = try await Self.openChannel(port: port)
            #expect(first.contains("challenge"), "\(first)")
            let device = try await DeviceHarness.start(on: app, waitForConnection: false)
            let serial = device.serial
            var connected = false
            for _ in 0..<300 where !connected {
                connected = try await app.platform.store.read { try await $0.devices.find(serial: serial) }?.isOnline(at: app.clock.now) ?? false
                if !connected { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(connected, "the device was kept out while a silent connection was challenged")
            _ = try await holder.readUntilClosed(limit: .milliseconds(10))
            await device.stop()
        }
    }

    /// The kernel queues a fleet's burst of connections for the node to accept (what `ss` shows as a listening socket's
    /// Send-Q), up to the system's cap: at 256, devices beyond it lost their SYN and came 30 s late.
    @Test func theListeningSocketQueuesAFleetsBurst() async throws {
        try await TestPlatform.run(.live) { app in
            let port = try #require(app.client.port)
            let ss = Process()
            ss.executableURL = URL(fileURLWithPath: "/usr/bin/ss")
            ss.arguments = ["-Hltn", "sport = :\(port)"]
            let output = Pipe()
            ss.standardOutput = output
            try ss.run()
            ss.waitUntilExit()
            let line = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            // State, Recv-Q (connections waiting now), Send-Q (the queue's length), local address, peer.
            let columns = line.split(whereSeparator: \.isWhitespace)
            let queue = try #require(columns.count > 2 ? Int(columns[2]) : nil, "\(line)")
            let cap = Int(try String(contentsOfFile: "/proc/sys/net/core/somaxconn", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 4_096
            #expect(queue == min(ConnectionLimits().listenBacklog, cap))
            #expect(queue >= min(4_096, cap), "\(line)")
        }
    }

    /// The WebSocket handshake by hand, so the test holds and drops connections as it likes: the connection, and the
    /// server's first frame (unmasked text: the challenge, or a refusal).
    static func openChannel(port: Int) async throws -> (RawConnection, String) {
        let connection = try await RawConnection.open(port: port)
        try await connection.send("GET /api/v1/devices/channel HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            + "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        return (connection, try await connection.read(until: "}", limit: .seconds(10)))
    }

    /// Where one place is all there is: a silent first channel is challenged and holds it, the second is refused
    /// `rate_limited`, then the first goes. Answers what the first was sent.
    static func theOnlyPlaceIsHeldAndTheNextRefused(port: Int) async throws -> String {
        let (holder, first) = try await openChannel(port: port)
        #expect(first.contains("challenge"), "\(first)")
        let (second, refused) = try await openChannel(port: port)
        #expect(refused.contains("refused") && refused.contains("rate_limited"), "\(refused)")
        _ = try await second.readUntilClosed(limit: .seconds(5))
        _ = try await holder.readUntilClosed(limit: .milliseconds(10))
        return first
    }
}
