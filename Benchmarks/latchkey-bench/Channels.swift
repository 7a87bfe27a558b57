import AsyncHTTPClient
import Foundation
import LatchkeyCloud
import LatchkeyDevice
import LatchkeyProtocol
import Logging

/// Thousands of devices holding their channel to one `latchkey serve` (SQLite, its own process), each with its own
/// manufacturer-issued identity and the real handshake (challenge, signed hello with the certificate chain, the
/// platform's signed welcome). Measured: the server's CPU per handshake, its memory and CPU per idle channel, and how
/// the devices come back after the server is killed and started again (jittered backoff).
struct ChannelScale {
    let client: HTTPClient
    let channels: Int
    let idleSeconds: Double
    static let openChannels = "latchkey_device_channels"
    /// New channels a second while the fleet first comes online.
    static let connectRate = 200.0

    struct Result {
        var backend: String
        var channels: Int
        var issueSeconds: Double
        var connectSeconds: Double
        var handshakeMilliseconds: Double
        var memoryBeforeMiB: Double
        var memoryAfterMiB: Double
        var idleMicrosecondsPerChannelMinute: Double
        var idleCoreShare: Double
        /// Seconds from the new server answering until half, 99 % and all of the devices were back.
        var reconnect: (half: Double, most: Double, all: Double)
        var reconnectHandshakeMilliseconds: Double
    }

    /// On one backend; PostgreSQL starts from the devices the database already holds (each run adds its own).
    func run(backend name: String, location: DatabaseLocation, directory: URL, port: Int) async throws -> Result {
        let data = try BenchData(location, folder: directory.appendingPathComponent("channels-\(name)"))
        let authority = try ManufacturerAuthority.create(name: "Latchkey Bench Fleet")
        let arguments = try data.trusting(authority) + ["--channels-per-address", String(channels + 100)]

        print("Issuing \(channels) device identities (\(name))…")
        let tag = UUID().uuidString.prefix(8)
        let issueStarted = ContinuousClock.now
        var logger = Logger(label: "latchkey-bench-fleet")
        logger.logLevel = .critical
        var runners: [DeviceRunner] = []
        for index in 0..<channels {
            let serial = "FLEET-\(tag)-\(index)"
            let configuration = DeviceConfiguration(
                identity: try authority.issue(serial: serial, model: "DS-2CD2143G2-I"), deviceType: .camera, firmware: "V5.7.3",
                cloudURL: "http://127.0.0.1:\(port)", listenHost: "127.0.0.1", listenPort: 0,
                stateDirectory: data.folder.appendingPathComponent("devices/\(serial)").path, adminPassword: "Vecchia2023")
            runners.append(try DeviceRunner(configuration: configuration, logger: logger))
        }
        let issueSeconds = (ContinuousClock.now - issueStarted).seconds

        var server = try ServerProcess(port: port, data: data, arguments: arguments)
        defer { server.stop() }
        let load = Load(client: client, base: server.base, seconds: 0, concurrency: 1)
        try await load.waitUntilUp()
        let memoryBefore = server.residentMiB
        let cpuBefore = server.cpuSeconds
        print("Connecting \(channels) channels…")
        let connectStarted = ContinuousClock.now
        // Switched on at `connectRate` a second, as a fleet comes online (after a restart they come back all at once).
        var fleet: [Task<Void, any Error>] = []
        defer { fleet.forEach { $0.cancel() } }
        for (index, runner) in runners.enumerated() {
            fleet.append(Task { try await runner.runChannelOnly() })
            if index % 100 == 99 { try await Task.sleep(until: connectStarted + .seconds(Double(index + 1) / Self.connectRate)) }
        }
        _ = try await waitForChannels(channels, load: load, since: connectStarted)
        let connectSeconds = (ContinuousClock.now - connectStarted).seconds
        let handshakeCPU = server.cpuSeconds - cpuBefore

        print("Holding them idle for \(Int(idleSeconds)) s…")
        try await Task.sleep(for: .seconds(5))
        let idleCPUBefore = server.cpuSeconds
        try await Task.sleep(for: .seconds(idleSeconds))
        let idleCPU = server.cpuSeconds - idleCPUBefore
        let memoryAfter = server.residentMiB

        print("Killing the server and starting it again…")
        server.stop(SIGKILL)
        server = try ServerProcess(port: port, data: data, arguments: arguments)
        let restarted = Load(client: client, base: server.base, seconds: 0, concurrency: 1)
        try await restarted.waitUntilUp()
        let upAt = ContinuousClock.now
        let reconnectCPUBefore = server.cpuSeconds
        let marks = try await waitForChannels(channels, load: restarted, since: upAt)
        let reconnectCPU = server.cpuSeconds - reconnectCPUBefore
        return Result(
            backend: name, channels: channels, issueSeconds: issueSeconds, connectSeconds: connectSeconds,
            handshakeMilliseconds: handshakeCPU * 1000 / Double(channels), memoryBeforeMiB: memoryBefore, memoryAfterMiB: memoryAfter,
            idleMicrosecondsPerChannelMinute: idleCPU * 1e6 / Double(channels) * (60 / idleSeconds), idleCoreShare: idleCPU / idleSeconds,
            reconnect: marks, reconnectHandshakeMilliseconds: reconnectCPU * 1000 / Double(channels))
    }

    /// Polls the server's `latchkey_device_channels` until `count` are open: seconds since `since` at half, 99 %, all.
    private func waitForChannels(_ count: Int, load: Load, since: ContinuousClock.Instant) async throws -> (half: Double, most: Double, all: Double) {
        var half: Double?
        var most: Double?
        for _ in 0..<3000 {
            // A server busy with thousands of handshakes may answer late: ask again.
            guard let open = try? await load.metrics()[Self.openChannels] else { continue }
            let elapsed = (ContinuousClock.now - since).seconds
            if half == nil, open >= Double(count) / 2 { half = elapsed }
            if most == nil, open >= Double(count) * 0.99 { most = elapsed }
            if open >= Double(count) { return (half ?? elapsed, most ?? elapsed, elapsed) }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw Load.Failure(description: "only \((try? await load.metrics()[Self.openChannels]) ?? 0) of \(count) channels opened in 5 minutes")
    }

    static func report(_ result: Result, idleSeconds: Double) {
        print("""

            device channels on \(result.backend): \(result.channels) emulated devices in this process, each with its own certificate \
            chain, plain ws to latchkey serve in its own process
            issuing the identities (bench side): \(String(format: "%.1f", result.issueSeconds)) s
            connect all, switched on at \(Int(connectRate)) a second (handshake with chain verification): \
            \(String(format: "%.1f", result.connectSeconds)) s, \
            server CPU \(String(format: "%.2f", result.handshakeMilliseconds)) ms per handshake
            server memory: \(String(format: "%.0f", result.memoryBeforeMiB)) MiB before, \(String(format: "%.0f", result.memoryAfterMiB)) MiB \
            holding them: \(String(format: "%.1f", (result.memoryAfterMiB - result.memoryBeforeMiB) * 1024 / Double(result.channels))) KiB per channel
            idle (\(Int(idleSeconds)) s, pings at their defaults both ways): \(String(format: "%.1f", result.idleMicrosecondsPerChannelMinute)) µs CPU \
            per channel per minute = \(String(format: "%.1f", result.idleCoreShare * 100)) % of a core for all
            extrapolated to 100,000 channels: \(String(format: "%.1f", (result.memoryAfterMiB - result.memoryBeforeMiB) / Double(result.channels) * 100_000 / 1024)) GiB, \
            \(String(format: "%.1f", result.idleCoreShare * 100_000 / Double(result.channels) * 100)) % of a core at rest (goal ≤ 4 GiB, ≤ 10 %)
            after the server was killed and restarted: half back in \(String(format: "%.1f", result.reconnect.half)) s, 99 % in \
            \(String(format: "%.1f", result.reconnect.most)) s, all in \(String(format: "%.1f", result.reconnect.all)) s; \
            server CPU \(String(format: "%.2f", result.reconnectHandshakeMilliseconds)) ms per reconnection
            """)
    }
}
